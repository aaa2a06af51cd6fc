/*
 * Private state of the mock backend shared by its own files: the device, its PCI functions,
 * the DMA channels and their rings, the engine thread and the injection rules.
 * (Extensions see only mock_internal.h.)
 */
#ifndef MOCK_PRIV_H
#define MOCK_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <ferry/hal/hal.h>
#include <ferry/log.h>
#include "mock_internal.h"
#include "mock_shm.h"

#define MOCK_COMP "mock"
#define MOCK_ERR(...) ferry_log(FERRY_LOG_ERROR, MOCK_COMP, __VA_ARGS__)
#define MOCK_WARN(...) ferry_log(FERRY_LOG_WARN, MOCK_COMP, __VA_ARGS__)

#define MOCK_MAX_RING 65536u
#define MOCK_MAX_CHANNELS 64u
#define MOCK_MAX_SGES 1024u
#define MOCK_MAX_XFER (1ull << 30)
#define MOCK_MAX_RULES 16u
#define MOCK_MAX_LATENCY_NS 10000000000ull

/* One ring entry. Written by the submitter before tail moves; status by the engine. */
struct mock_slot {
	struct ferry_xfer *x;
	uint64_t due_ns;    /* earliest completion time */
	uint64_t fence_dep; /* first unreaped index when submitted (fence failure window) */
	uint8_t zero;       /* memzero: no source, fill the destination with zeros */
	uint8_t inject;     /* injected status, 0 = none */
	uint8_t status;     /* completion status (engine) */
	uint8_t started;    /* the engine has looked at it as the channel's head */
};

/*
 * A channel: one ring of `size` slots. Indices only grow; slot = index % size.
 * tail: submitter; done: engine (entries below it are complete); head: poller.
 * Submitter and poller are the same thread (HAL contract) or hold the owner's lock.
 */
struct mock_chan {
	struct mock_dev *dev; /* NULL once the device was closed under it */
	uint32_t id;
	uint32_t size;
	struct mock_slot *ring;
	_Atomic uint64_t tail;
	_Atomic uint64_t done;
	uint64_t head;
	uint64_t last_fail; /* engine: index + 1 of the latest failed entry, 0 = none */
	uint64_t nsub;      /* injection count of this channel (under dev->inj_lock) */
	int user;           /* a HAL channel (not a function's internal one) */
	int dying;
	struct mock_chan *next;
};

struct mock_dreq;

/* One PCI function: its IOMMU table, its memory domain, its internal channel. */
struct mock_fn {
	struct mock_dev *dev;
	uint32_t index;
	char name[MOCK_FN_NAME_MAX];
	_Atomic uint64_t *table; /* in shared memory */
	_Atomic uint64_t *gen;   /* in shared memory */
	struct ferry_memdomain *domain;
	struct mock_chan *chan;    /* pull/push/memzero of the domain */
	pthread_mutex_t lock;      /* serialises submit/reap on chan, and pend_* */
	pthread_mutex_t rmap_lock; /* reverse map: host page -> IOVA page + 1 (0 = none) */
	uint32_t *rmap;
	uint64_t rmap_gen;
	int rmap_valid;
	/* Domain operations reaped from chan, waiting for the poll of the thread that started
	 * them (completion order; under lock). */
	struct mock_dreq *pend_head, *pend_tail;
};

struct mock_pcie;

struct mock_rule {
	uint32_t chan_id;
	uint64_t target; /* fires when the scope's count reaches this */
	uint8_t status;
};

struct mock_dev {
	struct ferry_device *fdev;
	char name[48];
	struct ferry_mock_host *shm; /* the device's own mapping; owns the memfd */
	uint8_t *host;               /* host RAM in this process */
	uint64_t host_size, host_pages;
	uint64_t iova_size, iova_pages;
	uint32_t nfn;
	struct mock_fn fn[MOCK_MAX_FNS];
	uint32_t ring_default;
	_Atomic uint64_t latency_ns;

	/* engine */
	pthread_t thread;
	int thread_started;
	int engine_init; /* lock and conditions initialised */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the engine sleeps here */
	pthread_cond_t idle; /* waiters for active/active_work to change */
	int stop;
	struct mock_chan *chans; /* service order (round robin: served goes last) */
	struct mock_chan *active;
	struct mock_work *work_head, *work_tail, *active_work;
	uint32_t next_chan_id;
	uint32_t user_chans;
	struct iovec *sbuf, *dbuf; /* engine scratch */
	uint32_t scap, dcap;

	/* injection */
	pthread_mutex_t inj_lock;
	struct mock_rule rules[MOCK_MAX_RULES];
	uint32_t nrules;
	uint64_t nsub;
	uint32_t ppm, status_mask;
	uint64_t prng;

	/* PCIe endpoint (mock_pcie_ep.c): created on first use, freed by mock_pcie_free() */
	struct mock_pcie *_Atomic pcie;

	/* counters */
	_Atomic uint64_t st_xfers, st_bytes, st_errors, st_page_faults, st_injected,
		st_not_attempted, st_domain_ops, st_translations, st_rmap_builds, st_invalidations;
};

extern const struct ferry_hal_backend mock_backend;
extern const struct ferry_hal_dma_ops mock_dma_ops;
extern const struct ferry_hal_pcie_ep_ops mock_pcie_ep_ops;

/* mock_pcie_ep.c */
void mock_pcie_free(struct mock_dev *dev);

/* mock_engine.c */
int mock_engine_start(struct mock_dev *dev);
void mock_engine_stop(struct mock_dev *dev);
int mock_chan_open(struct mock_dev *dev, uint32_t id, uint32_t ring, int user,
		   struct mock_chan **out);
void mock_chan_detach(struct mock_chan *ch); /* engine stops touching it */
void mock_chan_close(struct mock_chan *ch);  /* detach + free */
int mock_chan_push(struct mock_chan *ch, struct ferry_xfer *x, int zero);
void mock_engine_kick(struct mock_dev *dev);
uint32_t mock_chan_reap(struct mock_chan *ch, struct ferry_xfer **done, uint32_t max);

/* mock_inject.c */
void mock_inject_init(struct mock_dev *dev, uint64_t seed, uint32_t ppm);

/* mock_domain.c */
int mock_domains_create(struct mock_dev *dev);
void mock_domains_destroy(struct mock_dev *dev);
struct mock_fn *mock_fn_of(struct mock_dev *dev, const struct ferry_memdomain *d);

/* mock_iommu.c */
int mock_translate(struct mock_fn *from, const struct iovec *src, uint32_t src_cnt,
		   struct mock_fn *to, struct ferry_mem *out);
void mock_rmap_drop(struct mock_dev *dev);
/* Why [iov] is not reachable through fn for reading or writing (first offending page). */
void mock_fault_explain(struct mock_fn *fn, const struct iovec *iov, uint32_t cnt, int write,
			char *buf, size_t size);

#endif /* MOCK_PRIV_H */

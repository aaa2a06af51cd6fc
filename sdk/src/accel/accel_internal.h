/*
 * Accel framework internals shared by sdk/src/accel_*.c: the module (pool, domain, global
 * counters), channels, virtual buffers, sequences and their steps (tasks), and the entry
 * points of the passes, the executor, the software engine and the dumper. Never installed.
 */
#ifndef FERRY_ACCEL_INTERNAL_H
#define FERRY_ACCEL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <ferry/accel.h>
#include <ferry/hal/accel.h>
#include <ferry/hal/dma.h>
#include "core_internal.h"

#define ACCEL_COMP "accel"

/* Segments of a resolved virtual operand or of a bounce (several pool buffers). */
#define ACCEL_XIOV_MAX 8
/* Largest allowed virtual buffer / pool buffer size. */
#define ACCEL_BUF_SIZE_MAX (16u << 20)
#define ACCEL_BUF_COUNT_MAX 65536u
/* Virtual addresses: slot i of a channel covers [VA_BASE + i * VA_STRIDE, + len). */
#define ACCEL_VA_BASE 0x0acc000000000000ull
#define ACCEL_VA_STRIDE ((uint64_t)ACCEL_BUF_SIZE_MAX)

/* Internal opcodes after the public ones: inserted by materialisation. */
#define ACCEL_OP_PULL ((uint8_t)FERRY_ACCEL_OP_COUNT)
#define ACCEL_OP_PUSH ((uint8_t)(FERRY_ACCEL_OP_COUNT + 1))
#define ACCEL_OP_MAX (FERRY_ACCEL_OP_COUNT + 2)

/* Operand slots of a task. */
enum {
	OPND_SRC = 0,
	OPND_DST = 1,
	OPND_AUX = 2,
	OPND_COUNT = 3
};
#define OPND_BIT(k) (1u << (k))

/* What each opcode reads and writes (OPND_BIT masks) and its name: the backend SDK's table
 * (ferry_hal_accel_op_get_info()) for the public opcodes, accel_inserted_opinfo for pull/push. */
_Static_assert(OPND_BIT(OPND_SRC) == FERRY_HAL_ACCEL_OPND_SRC &&
		       OPND_BIT(OPND_DST) == FERRY_HAL_ACCEL_OPND_DST &&
		       OPND_BIT(OPND_AUX) == FERRY_HAL_ACCEL_OPND_AUX,
	       "operand bits are the HAL's");
extern const struct ferry_hal_accel_op_info accel_inserted_opinfo[ACCEL_OP_MAX - FERRY_ACCEL_OP_COUNT];
static inline const struct ferry_hal_accel_op_info *accel_op_info(uint8_t op)
{
	return op < FERRY_ACCEL_OP_COUNT ? ferry_hal_accel_op_get_info((enum ferry_accel_opcode)op)
					 : &accel_inserted_opinfo[op - FERRY_ACCEL_OP_COUNT];
}

enum accel_task_state {
	TASK_PLANNED = 0, /* will run */
	TASK_ELIDED = 1,  /* removed by elision; its callback runs at its position */
	TASK_DONE = 2,    /* completed (status in task->status) */
};

enum accel_engine {
	ENG_NONE = 0,   /* not chosen yet / elided */
	ENG_SW = 1,     /* software engine */
	ENG_HW = 2,     /* the device's engine */
	ENG_DOMAIN = 3, /* ferry_memdomain_pull/push (bounce) */
};

/* Pool size classes. */
enum {
	POOL_SMALL = 0,
	POOL_LARGE = 1,
	POOL_CLASSES = 2
};

struct accel_vbuf;

/* One step of a sequence. */
struct accel_task {
	struct accel_task *next, *prev; /* sequence order (next: free list when unused) */
	struct ferry_seq *seq;
	uint8_t opcode;
	uint8_t state;
	uint8_t engine;
	uint8_t inserted;     /* pull/push added by materialisation */
	uint8_t group_len;    /* fused group head: planned tasks in the group; else 1 */
	uint8_t group_member; /* a non-head member of a fused group */
	uint8_t fallback;     /* runs in software although the channel has a device engine */
	int16_t chain;        /* fused group head: index of the declared chain, else -1 */
	int status;
	struct ferry_mem opnd[OPND_COUNT]; /* as appended, rewritten by elision */
	struct ferry_mem x[OPND_COUNT];    /* resolved by materialisation */
	struct iovec xiov[OPND_COUNT][ACCEL_XIOV_MAX];
	/* Bounce buffers owned by a pull (or by a push without a pull). */
	void *bufs[ACCEL_XIOV_MAX];
	uint8_t buf_class[ACCEL_XIOV_MAX];
	uint8_t nbufs;
	/* Parameters. */
	uint8_t fill;
	uint32_t crc_seed;
	uint32_t *crc_out;
	struct ferry_crypto_key *key;
	uint64_t tweak;
	struct ferry_dif_ctx dif;
	uint32_t nblocks;
	struct ferry_dif_error *dif_err;
	ferry_seq_step_cb cb;
	void *cb_arg;
	/* Execution of an inserted pull/push. */
	int dom_status;
	uint8_t dom_done;
	uint8_t dom_waiting; /* the sequence is parked waiting for this pull/push */
};

/* A virtual buffer: address space in the accel domain. */
struct accel_vbuf {
	struct ferry_accel_chan *chan;
	uint64_t base;
	size_t len;
	uint32_t idx;
	uint8_t in_use;
	uint8_t real_class;
	void *real;                  /* pool buffer bound while a sequence executes */
	struct ferry_seq *bound_seq; /* the sequence holding @real */
	struct ferry_seq *owner;     /* the sequence that appended it (alive if its id matches) */
	uint32_t owner_id;
	struct accel_vbuf *next;     /* free list / the sequence's bound list */
};

enum seq_state {
	SEQ_BUILDING = 0, /* appending */
	SEQ_PLANNED = 1,  /* elision + fusion done (finish returned -ENOMEM; retry allowed) */
	SEQ_RUNNING = 2,  /* finished, executing */
	SEQ_DONE = 3,     /* waiting for its completion delivery */
	SEQ_FREE = 4,
};

enum seq_wait {
	WAIT_NONE = 0,
	WAIT_HW = 1,     /* a descriptor is on the engine */
	WAIT_SUBMIT = 2, /* the engine's ring was full */
	WAIT_DOMAIN = 3, /* a pull/push is in flight */
};

struct ferry_seq {
	struct ferry_accel_chan *chan;
	struct accel_task *head, *tail;
	uint32_t ntasks;
	uint32_t id;
	uint8_t state;
	uint8_t wait;
	uint8_t had_nomem;
	uint8_t queued; /* on the ready queue */
	uint8_t passes; /* FERRY_ACCEL_PASS_* that ran */
	int status;
	ferry_seq_cb cb;
	void *cb_arg;
	struct accel_task *cur;        /* next task to execute */
	struct accel_task *pend_first; /* unit whose callbacks wait for its pushes */
	struct accel_task *pend_last;
	struct accel_vbuf *bound;         /* vbufs bound to pool buffers */
	uint32_t nbufs;                   /* pool buffers held (bound + bounce) */
	struct ferry_hal_accel_desc desc; /* the one descriptor in flight (units run in order) */
	struct accel_task *desc_head, *desc_tail;
	struct ferry_seq *next; /* free list / channel queues */
	char errmsg[FERRY_HAL_ACCEL_REASON_MAX + 128]; /* why it failed (status != 0) */
};

/* Counter indexes (mirrors struct ferry_accel_stats). */
enum accel_counter {
	CNT_OPS_HW = 0,
	CNT_OPS_SW = CNT_OPS_HW + FERRY_ACCEL_OP_COUNT,
	CNT_BYTES_HW = CNT_OPS_SW + FERRY_ACCEL_OP_COUNT,
	CNT_BYTES_SW,
	CNT_SEQS_FINISHED,
	CNT_SEQS_COMPLETED,
	CNT_SEQS_ABORTED,
	CNT_COPIES_ELIDED,
	CNT_FUSIONS,
	CNT_FUSED_OPS,
	CNT_BUFS_TAKEN,
	CNT_BOUNCES,
	CNT_SW_FALLBACKS,
	CNT_ERRORS,
	CNT_NOMEM,
	CNT_NOMEM_RETRIES,
	CNT_BYTES_COPIED,
	CNT_BYTES_BOUNCED,
	CNT_BYTES_OUT_HW,
	CNT_BYTES_OUT_SW,
	CNT_BYTES_OUT_FUSED,
	CNT_COUNT
};

/* Channel counters: written by the owning thread only, read by any (relaxed atomics). */
struct accel_counters {
	_Atomic uint64_t v[CNT_COUNT];
	_Atomic uint64_t bufs_in_use;
	_Atomic uint64_t bufs_peak;
};

static inline void cnt_add(struct accel_counters *c, unsigned int i, uint64_t n)
{
	atomic_store_explicit(&c->v[i], atomic_load_explicit(&c->v[i], memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* A domain the channel is waiting on (pulls/pushes in flight). The table grows as needed:
 * a domain with work in flight that the poller did not poll would never complete it. */
struct accel_dom_wait {
	struct ferry_memdomain *domain; /* NULL: free slot */
	uint32_t pending;
};

struct ferry_accel_chan {
	struct ferry_accel_chan *abandoned_next; /* list of channels a stuck destroy abandoned */
	struct ferry_device *dev;
	const struct ferry_hal_dma_ops *dma;
	const struct ferry_hal_accel_ops *hw; /* NULL: software engine only */
	void *hwchan;
	struct ferry_accel_chan_opts opts;
	struct accel_task *task_mem, *free_tasks;
	uint32_t tasks_free;
	struct ferry_seq *seq_mem, *free_seqs;
	uint32_t seqs_free;
	struct accel_vbuf *vbuf_mem, *free_vbufs;
	struct ferry_seq *ready_head, *ready_tail;   /* to advance */
	struct ferry_seq *done_head, *done_tail;     /* to deliver */
	struct ferry_seq *submit_head, *submit_tail; /* waiting for ring space */
	uint32_t inflight;                           /* finished, not yet delivered */
	uint32_t hw_inflight;
	uint32_t seq_ids;
	struct accel_dom_wait *domw; /* domains with pulls/pushes in flight (holes allowed) */
	uint32_t ndomw;              /* slots used (high-water mark) */
	uint32_t domw_cap;           /* slots allocated */
	uint32_t dom_pending;        /* pulls/pushes in flight over all domains */
	uint64_t events;             /* completions seen (destroy's progress check) */
	void **cache[POOL_CLASSES];
	uint32_t ncache[POOL_CLASSES];
	ferry_accel_plan_cb plan_cb;
	void *plan_arg;
	enum ferry_seq_dump_fmt plan_fmt;
	int polling; /* re-entrancy guard of ferry_accel_chan_poll() */
	struct accel_counters cnt;
	struct ferry_accel_chan *gnext; /* module's channel list */
};

/* --- module (accel_module.c) --- */
int accel_module_ensure(void);
struct ferry_memdomain *accel_domain(void);
uint32_t accel_cache_size(void);
size_t accel_large_size(void);
void accel_module_chan_add(struct ferry_accel_chan *ch);
void accel_module_chan_del(struct ferry_accel_chan *ch);
/* Take a pool buffer of at least @len bytes (class out); NULL when exhausted. */
void *accel_pool_get(struct ferry_accel_chan *ch, size_t len, uint8_t *cls);
void accel_pool_put(struct ferry_accel_chan *ch, void *buf, uint8_t cls);
void accel_pool_cache_flush(struct ferry_accel_chan *ch);

/* --- channel helpers (accel_chan.c) --- */
struct accel_task *accel_task_get(struct ferry_accel_chan *ch);
void accel_task_put(struct ferry_accel_chan *ch, struct accel_task *t);
struct accel_vbuf *accel_vbuf_of(struct ferry_accel_chan *ch, void *ctx);
/* The live sequence a virtual buffer belongs to, or NULL (accel_seq.c). */
struct ferry_seq *vbuf_owner(const struct accel_vbuf *v);
void accel_seq_ready(struct ferry_seq *seq);
int accel_dom_wait_add(struct ferry_accel_chan *ch, struct ferry_memdomain *d); /* 0/-ENOMEM */
void accel_dom_wait_del(struct ferry_accel_chan *ch, struct ferry_memdomain *d);
void accel_plan_hook(struct ferry_seq *seq, const char *stage);

/* --- memory helpers (accel_mem.c) --- */
struct ferry_memdomain *accel_dom(const struct ferry_memdomain *d); /* NULL -> system */
bool accel_is_virtual(const struct ferry_mem *m);
bool accel_is_system(const struct ferry_mem *m);
bool accel_mem_same(const struct ferry_mem *a, const struct ferry_mem *b);
/* Address overlap inside one address space (argument checks at append). */
bool accel_mem_addr_overlap(const struct ferry_mem *a, const struct ferry_mem *b);
/* May the two name a common byte, aliasing included (what the passes must assume). */
bool accel_mem_overlap(const struct ferry_mem *a, const struct ferry_mem *b);
uint64_t accel_mem_len(const struct ferry_mem *m);
/* Data the task consumes / produces (chain links). */
const struct ferry_mem *accel_data_in(const struct accel_task *t);
const struct ferry_mem *accel_data_out(const struct accel_task *t);
bool accel_task_reads(const struct accel_task *t, const struct ferry_mem *m);
bool accel_task_writes(const struct accel_task *t, const struct ferry_mem *m);
bool accel_task_touches(const struct accel_task *t, const struct ferry_mem *m);
/* Fill @op from @t using its resolved (x) or as-appended (opnd) operands. */
void accel_task_to_op(const struct accel_task *t, bool resolved, struct ferry_hal_accel_op *op);
/* Domain class (FERRY_HAL_ACCEL_DOM_*) of an operand as the engine would see it. */
uint32_t accel_dom_class(const struct ferry_accel_chan *ch, const struct ferry_mem *m);
bool accel_hw_reaches(const struct ferry_accel_chan *ch, const struct ferry_mem *m);
static inline struct accel_task *accel_next_planned(struct accel_task *t)
{
	for (t = t ? t->next : NULL; t && t->state == TASK_ELIDED; t = t->next)
		;
	return t;
}

/* --- passes --- */
uint32_t accel_pass_elide(struct ferry_seq *seq);  /* copies elided */
uint32_t accel_pass_fuse(struct ferry_seq *seq);   /* groups made */
int accel_pass_materialise(struct ferry_seq *seq); /* 0 / -ENOMEM / -EINVAL */
void accel_release_buffers(struct ferry_seq *seq); /* undo / after completion */

/* --- execution (accel_exec.c, accel_sw.c) --- */
void accel_seq_run(struct ferry_seq *seq);
void accel_hw_complete(struct ferry_hal_accel_desc *desc);
int accel_sw_exec(struct ferry_hal_accel_op *op);
void accel_seq_free(struct ferry_seq *seq);
/* Destroy gave up waiting: run the callbacks not run yet with -ECANCELED (buffers kept). */
void accel_seq_cancel_stuck(struct ferry_seq *seq);

/* --- dump (accel_dump.c) --- */
int accel_dump(const struct ferry_seq *seq, enum ferry_seq_dump_fmt fmt, char *buf, size_t len);

#endif /* FERRY_ACCEL_INTERNAL_H */

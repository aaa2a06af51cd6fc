/*
 * ferry-conformance: what the check files share. The suite runs the written contract of every
 * HAL class (DMA engine, accel, PCIe endpoint, NIC with TCP/DDP and RDMA) against one backend,
 * chosen by name (built in, linked in, or loaded as a plugin with --load). It talks to the
 * backend only through the public SDK and HAL headers; what no public API can do in a
 * backend-neutral way (make host memory reachable through a PCI function) is asked of an
 * optional per-backend hook table (struct conf_hooks).
 *
 * A check is a function defined with CONF_TEST(suite, name). The runner (runner.c) runs each
 * check in its own child process (unless --no-fork) with a timeout, so a check that crashes or
 * hangs the backend is one failed check, and prints one TAP line per check. Inside a check:
 *   CONF_ASSERT / CONF_RC   fail the check with a message naming the violated contract;
 *   CONF_SKIP               skip it with the reason (a missing capability or device);
 *   CONF_INFO               a diagnostic line (TAP comment).
 * Failing and skipping do not return (they leave the check through the runner).
 *
 * The suite decides the check's class from its suite name (conf_suite_class() in runner.c):
 *   hal, dma, memdomain -> dma; accel -> accel; pcie_ep, pcie -> pcie; nic, rdma -> nic.
 */
#ifndef CONF_H
#define CONF_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <ferry/ferry.h>
#include <ferry/hal/hal.h>
#include <ferry/hal/accel.h>

/* The backend under test, as the runner hands it to every check. */
struct conf_param {
	unsigned int index;            /* ferry_hal_get() index */
	char name[FERRY_HAL_NAME_MAX]; /* its name */
	const char *args;              /* --args: device arguments ("" by default) */
	uint64_t seed;                 /* --seed: every random choice of a check derives from it */
};

/* A registered check (CONF_TEST registers it before main runs). */
struct conf_check {
	const char *suite;
	const char *name;
	void (*fn)(struct conf_param *param);
};
void conf_register_check(const struct conf_check *check);

/* A check run once for the backend under test; the body sees `struct conf_param *param`. */
#define CONF_TEST(suite, name)                                                                     \
	static void conf_fn_##suite##_##name(struct conf_param *param);                            \
	static const struct conf_check conf_chk_##suite##_##name = {#suite, #name,                 \
								     conf_fn_##suite##_##name};    \
	__attribute__((constructor)) static void conf_reg_##suite##_##name(void)                   \
	{                                                                                          \
		conf_register_check(&conf_chk_##suite##_##name);                                   \
	}                                                                                          \
	static void conf_fn_##suite##_##name(struct conf_param *param)

/* Name of the backend under test (every message starts with it). */
extern const char *conf_cur;

/* ferry_last_error(), or "(none logged)". */
const char *conf_last_error(void);

/* Leave the running check as failed / skipped with a printf-style message (never returns). */
__attribute__((noreturn, format(printf, 3, 4))) void conf_fail_at(const char *file, int line,
								   const char *fmt, ...);
__attribute__((noreturn, format(printf, 1, 2))) void conf_skip(const char *fmt, ...);
/* A diagnostic line of the running check (printed as a TAP comment). */
__attribute__((format(printf, 1, 2))) void conf_info(const char *fmt, ...);

#define CONF_ASSERT(cond, fmt, ...)                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			conf_fail_at(__FILE__, __LINE__, "[%s] " fmt, conf_cur, ##__VA_ARGS__);    \
	} while (0)
/* rc must be want; the message adds both errno names and the library's last error. */
#define CONF_RC(rc, want, what)                                                                    \
	do {                                                                                       \
		int conf_rc_ = (rc), conf_want_ = (want);                                          \
		CONF_ASSERT(conf_rc_ == conf_want_,                                                \
			    "%s: got %d (%s), want %d (%s); last logged error: %s", (what),        \
			    conf_rc_, ferry_strerror(conf_rc_), conf_want_,                        \
			    ferry_strerror(conf_want_), conf_last_error());                        \
	} while (0)
#define CONF_SKIP(fmt, ...) conf_skip("[%s] " fmt, conf_cur, ##__VA_ARGS__)
#define CONF_INFO(fmt, ...) conf_info("[%s] " fmt, conf_cur, ##__VA_ARGS__)

/* The seed of the run (--seed) mixed with @p salt: the start state of a check's generator. */
uint64_t conf_seed(const struct conf_param *p, uint64_t salt);

/* A device of the backend under test and its DMA engine's capabilities. */
struct conf_ctx {
	const struct ferry_hal_backend *backend;
	struct ferry_device *dev;
	struct ferry_dma_info info;
	uint32_t align; /* max(info.alignment, 1): unit of lengths and addresses */
};

/* The backend of @p p (asserts it is still the one at that index). Sets conf_cur. */
const struct ferry_hal_backend *conf_backend(const struct conf_param *p);

/*
 * Open a device of @p p's backend with @p p->args and
 * query its DMA engine. Skips the test (with the reason) when the backend has no DMA engine or
 * its open fails with -ENODEV or -ENOTSUP (hardware or kernel support absent); any other
 * failure fails the test.
 */
void conf_open(const struct conf_param *p, struct conf_ctx *c);

/*
 * Open a device of @p p's backend with @p args (NULL: ""): skips the check when the open fails
 * with -ENODEV or -ENOTSUP (hardware or kernel support absent), fails it on any other error
 * or when the device does not report class @p cls (FERRY_DEVICE_CLASS_*) although the backend
 * has @p table ("a NIC table"...).
 */
struct ferry_device *conf_open_device(const struct conf_param *p, const char *args,
				      uint32_t cls, const char *table);

/* Release the backend's hook state, then close the device. */
void conf_close(struct conf_ctx *c);

/* Skip unless every bit of @p caps is in the engine's capabilities. */
void conf_require(const struct conf_ctx *c, uint64_t caps, const char *why);

/* Seeded generator (splitmix64) and byte patterns. */
uint64_t conf_rand(uint64_t *state);
void conf_pattern(void *buf, size_t len, uint64_t seed);

/* Zeroed heap memory aligned for the engine (free with free()). */
void *conf_alloc(const struct conf_ctx *c, size_t len);

/* Round @p v up to the engine's alignment unit. */
uint64_t conf_round(const struct conf_ctx *c, uint64_t v);

/*
 * Cut @p total bytes (a multiple of the alignment unit) into 1..@p maxseg segments of random
 * lengths (multiples of the unit) and lay them out in @p region in a random order with random
 * gaps, so that logical order differs from address order. @p region must hold
 * conf_region_len(c, total, maxseg) bytes. Returns the number of segments written to @p iov.
 */
uint32_t conf_scatter(const struct conf_ctx *c, uint64_t *rng, uint8_t *region, uint64_t total,
		      uint32_t maxseg, struct iovec *iov);
/* Cut @p units (>= @p k) into @p k random lengths >= 1 (@p len) and a random order of the k
 * pieces (@p order, a permutation of 0..k-1): the layout of conf_scatter() and its kin. */
void conf_cut(uint64_t *rng, uint64_t units, uint32_t k, uint64_t *len, uint32_t *order);
uint64_t conf_region_len(const struct conf_ctx *c, uint64_t total, uint32_t maxseg);

/* Segments the engine accepts per side, capped at @p cap (1 without FERRY_DMA_CAP_SG). */
uint32_t conf_max_segs(const struct conf_ctx *c, uint32_t cap);

/* user_ctx value of transfer @p i of a batch (checked untouched at completion). */
#define CONF_CTX(i) ((void *)(uintptr_t)(0xC0F00000u + (uint32_t)(i)))

/*
 * Submit @p n transfers (several submits when the ring is full) and poll until each one has
 * been returned exactly once (5 s at most). Checks that the engine never holds more than
 * @p ring transfers (0: no check), never returns a transfer twice or one it was not given,
 * writes a valid status and leaves user_ctx alone (it must be CONF_CTX(i)).
 * Returns the number of transfers that completed with a status other than SUCCESS.
 */
uint32_t conf_run(struct ferry_dma_chan *ch, struct ferry_xfer *x, uint32_t n, uint32_t ring);

/* Poll @p ch for about @p ms milliseconds; returns how many transfers came back. */
uint32_t conf_quiet_poll(struct ferry_dma_chan *ch, unsigned int ms);

/* Monotonic nanoseconds; sleep. */
uint64_t conf_now_ns(void);
void conf_sleep_us(unsigned int us);

/* An IOVA no PCI function maps: the last page of the 64-bit space. */
#define CONF_BAD_IOVA ((void *)(uintptr_t)(UINT64_MAX & ~(uint64_t)4095))

/* The device's PCIe function domains: type FERRY_MEMDOMAIN_PCIE named "<device>.<...>". */
uint32_t conf_pcie_domains(const struct conf_ctx *c, struct ferry_memdomain **out, uint32_t max);

/* ---------------------------------------------------------------------------------------------
 * Backend hooks: what a backend's test harness does that has no generic API. The tables of
 * the backends built into ferry-conformance are listed in conf_hooks.c; a backend without one
 * skips the checks that need host memory, with the reason.
 */

/* A range of host memory reachable through one PCIe domain. */
struct conf_host_range {
	void *iova;    /* address in the domain */
	uint8_t *host; /* the same bytes, as the test process sees them */
	uint64_t len;
};

struct conf_hooks {
	const char *backend;
	/*
	 * Make @p len bytes (a multiple of 4096) of host memory readable and writable through
	 * @p domain of @p dev and return where they are. Fresh bytes on each call.
	 * 0 success, -ENOTSUP unable (the check is skipped), another errno fails the test.
	 */
	int (*host_map)(struct ferry_device *dev, struct ferry_memdomain *domain, uint64_t len,
			struct conf_host_range *out);
	/* Drop what host_map set up for @p dev (called before the device is closed). */
	void (*release)(struct ferry_device *dev);
	/*
	 * Optional, the host side of PCIe function @p fn of @p dev (what a host driver does;
	 * NULL: the host-driven PCIe checks are skipped). Offsets are in BAR0.
	 * host_mmio_write: post a write (returns once queued). host_mmio_read: read and wait for
	 * the firmware's answer (the check polls the endpoint on another thread); 0 answered,
	 * -ENODEV unclaimed (function not attached; *val all ones), another errno failed.
	 * host_msix_count: how many times @p vector of @p fn was raised so far.
	 */
	int (*host_mmio_write)(struct ferry_device *dev, uint32_t fn, uint64_t off, uint32_t size,
			       uint64_t val);
	int (*host_mmio_read)(struct ferry_device *dev, uint32_t fn, uint64_t off, uint32_t size,
			      uint64_t *val);
	int (*host_msix_count)(struct ferry_device *dev, uint32_t fn, uint16_t vector,
			       uint64_t *count);
};

/* The hooks of backend @p name (or the ones forced by --hooks), or NULL. */
const struct conf_hooks *conf_hooks_find(const char *name);
/* --hooks: use the hooks of built-in backend @p name for every backend; -ENOENT none. */
int conf_hooks_use(const char *name);

/* Hook tables of the backends that have one. */
extern const struct conf_hooks conf_mock_hooks;

/* Domain completion counter for the exactly-once checks. */
struct conf_cb {
	int calls;
	int status;
};
void conf_cb_fn(void *arg, int status);

/* Poll @p d until @p cb saw a call or 5 s passed, then @p quiet_ms more (no second call). */
void conf_cb_wait(struct ferry_memdomain *d, struct conf_cb *cb, unsigned int quiet_ms);

#endif /* CONF_H */

/*
 * Harness of the integration tests: an endpoint stack in this (firmware) process, a host
 * scenario in a forked process, results and the failure message passed back through an
 * anonymous shared mapping. Header-only (each test_*.c is its own executable).
 */
#ifndef PCIE_HOST_UTIL_H
#define PCIE_HOST_UTIL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ferry/ferry.h>
#include <ferry/accel.h>
#include <ferry/bdev.h>
#include <ferry/endpoint.h>
#include <ferry/mock_pcie.h>
#include <ferry/nvme.h>
#include <ferry/pcie_transport.h>
#include "ep_stack.h"
#include "host_driver.h"
#include "loadgen.h"

/* What the host process reports back. */
struct ph_shared {
	char msg[512];
	uint64_t v[64];
	struct lg_result r;
};

static struct ph_shared *ph_sh;

/* A silent log handler for scenarios that provoke errors on purpose. */
static inline void ph_quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

static inline void ph_init_shared(void)
{
	if (!ph_sh) {
		ph_sh = mmap(NULL, sizeof(*ph_sh), PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		cr_assert_neq(ph_sh, MAP_FAILED);
	}
	memset(ph_sh, 0, sizeof(*ph_sh));
}

/* In the host process: record a failure and return 1 from the scenario. */
#define HCHECK(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			int n_ = snprintf(ph_sh->msg, sizeof(ph_sh->msg), "line %d: ", __LINE__);  \
			snprintf(ph_sh->msg + n_, sizeof(ph_sh->msg) - (size_t)n_, __VA_ARGS__);   \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

static inline struct ep_stack *ph_stack(int crypto_dif, const char *mock_args,
					const char *transport_args)
{
	ph_init_shared();
	struct ep_stack_opts o = {.size = sizeof(o),
				  .crypto_dif = crypto_dif,
				  .mock_args = mock_args,
				  .transport_args = transport_args};
	struct ep_stack *s = NULL;
	int rc = ep_stack_create(&o, &s);
	cr_assert_eq(rc, 0, "stack: %d (%s)", rc, ferry_last_error());
	return s;
}

/* Runs @p fn in a host process served by @p s; asserts it succeeded. */
static inline void ph_run(struct ep_stack *s, ep_host_fn fn, void *ctx)
{
	pid_t pid = ep_stack_fork_host(s, fn, ctx);
	cr_assert_gt(pid, 0);
	int st = 0;
	int rc = ep_stack_serve(s, pid, 120, &st);
	cr_assert_eq(rc, 0, "host process timed out: %s", ph_sh->msg);
	cr_assert(WIFEXITED(st), "host process died (status 0x%x): %s", st, ph_sh->msg);
	cr_assert_eq(WEXITSTATUS(st), 0, "host scenario failed: %s", ph_sh->msg);
}

/* In the host process: open and bring the controller up. */
static inline struct nvmeh_ctrlr *ph_up(int mem_fd, int pcie_fd, uint16_t nq, int poll_mode,
					uint32_t entries)
{
	struct nvmeh_opts o = {.size = sizeof(o),
			       .mem_fd = mem_fd,
			       .pcie_fd = pcie_fd,
			       .io_queues = nq,
			       .poll_mode = poll_mode,
			       .queue_entries = entries};
	struct nvmeh_ctrlr *c = NULL;
	int rc = nvmeh_open(&o, &c);
	if (!rc)
		rc = nvmeh_init(c);
	if (rc) {
		snprintf(ph_sh->msg, sizeof(ph_sh->msg), "bring-up failed: %d", rc);
		nvmeh_close(c);
		return NULL;
	}
	return c;
}

static inline struct ferry_nvme_ctrlr_stats ph_ctrlr_stats(struct ep_stack *s)
{
	struct ferry_nvme_ctrlr_stats st = {.size = sizeof(st)};
	cr_assert_eq(ferry_nvme_ctrlr_get_stats(s->ctrlr, &st), 0);
	return st;
}

#endif /* PCIE_HOST_UTIL_H */

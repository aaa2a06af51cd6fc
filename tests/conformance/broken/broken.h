/*
 * Deliberately broken backends: each is a plugin (ferry_hal_load()) derived from the mock
 * backend that breaks exactly one written HAL contract, so that the test of the conformance
 * suite can require that ferry-conformance fails it, naming that contract's check.
 *
 * Derivation: when the plugin is loaded into a process where the mock is registered (the
 * ferry-conformance program has it built in), its constructor copies the mock's backend and
 * class tables into writable copies, points the copy's tables at those copies and lets the
 * plugin replace the members it breaks. The device state is the mock's own (open is the
 * mock's, wrapped to append arguments), so every op that is not replaced behaves exactly as
 * on the mock and the mock's controls work on the derived devices (mock_dev_get()).
 *
 * Use, in one broken_<x>.c:
 *
 *     static int (*mock_submit)(void *, struct ferry_xfer *const *, uint32_t);
 *     static int bad_submit(void *ch, struct ferry_xfer *const *x, uint32_t n) { ... }
 *     static void brk(struct broken *b)
 *     {
 *             mock_submit = b->dma.submit;
 *             b->dma.submit = bad_submit;
 *     }
 *     BROKEN_BACKEND("broken_x", "extra=args", brk)
 *
 * Header-only: each plugin is one translation unit.
 */
#ifndef FERRY_TESTS_BROKEN_H
#define FERRY_TESTS_BROKEN_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/ferry.h>
#include <ferry/hal/hal.h>

struct broken {
	struct ferry_hal_backend be;
	struct ferry_hal_dma_ops dma;
	struct ferry_hal_accel_ops accel;
	struct ferry_hal_pcie_ep_ops pcie_ep;
	struct ferry_hal_nic_ops nic;
	const struct ferry_hal_backend *mock; /* the backend derived from */
	const char *extra_args;               /* appended to the device arguments ("" none) */
};

static struct broken broken_be;

/* The mock's open with the plugin's extra arguments appended. */
static int broken_open(struct ferry_device *dev, const char *args)
{
	const char *extra = broken_be.extra_args;
	if (!extra || !*extra)
		return broken_be.mock->open(dev, args);
	size_t len = strlen(args) + strlen(extra) + 2;
	char *all = malloc(len);
	if (!all)
		return -ENOMEM;
	snprintf(all, len, "%s%s%s", args, *args ? "," : "", extra);
	int rc = broken_be.mock->open(dev, all);
	free(all);
	return rc;
}

/* Copy the mock's tables into @p b (named @p name) and let @p brk replace members. */
static void broken_derive(struct broken *b, const char *name, const char *extra,
			  void (*brk)(struct broken *))
{
	const struct ferry_hal_backend *m = ferry_hal_find("mock");
	b->be.abi_version = FERRY_HAL_ABI_VERSION;
	b->be.name = name;
	if (!m) {
		/* open stays NULL: registration refuses the backend with -EINVAL. */
		fprintf(stderr, "%s: the mock backend is not registered in this process; this "
				"plugin is derived from it\n",
			name);
		return;
	}
	b->mock = m;
	b->extra_args = extra;
	b->be.open = broken_open;
	b->be.close = m->close;
	if (m->dma) {
		b->dma = *m->dma;
		if (m->dma->accel) {
			b->accel = *m->dma->accel;
			b->dma.accel = &b->accel;
		}
		b->be.dma = &b->dma;
	}
	if (m->pcie_ep) {
		b->pcie_ep = *m->pcie_ep;
		b->be.pcie_ep = &b->pcie_ep;
	}
	if (m->nic) {
		b->nic = *m->nic;
		b->be.nic = &b->nic;
	}
	brk(b);
}

/* Define the plugin: backend @p name = mock + @p extra args, tables changed by @p brk. */
#define BROKEN_BACKEND(name, extra, brk)                                                           \
	__attribute__((constructor)) static void broken_init(void)                                 \
	{                                                                                          \
		broken_derive(&broken_be, (name), (extra), (brk));                                 \
	}                                                                                          \
	FERRY_HAL_PLUGIN(broken_be.be);

#endif /* FERRY_TESTS_BROKEN_H */

/*
 * Firmware side of the nvme_endpoint sample, shared with its tests and benchmark: a mock
 * device, the block stack (malloc, or crypto on dif on malloc), an NVMe endpoint on the "pcie"
 * transport at fn=0, the loop that polls it while a host process (forked, or exec'd
 * ferry-nvme-host) drives the controller, and the per-I/O data-path figures computed from
 * the firmware's counters.
 */
#ifndef NVMEH_EP_STACK_H
#define NVMEH_EP_STACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <ferry/accel.h>
#include <ferry/bdev_nvmf.h>
#include <ferry/mock.h>
#include <ferry/nvme.h>
#include <ferry/pcie_transport.h>

struct ferry_device;
struct ferry_bdev;
struct ferry_endpoint;
struct ferry_transport;
struct ferry_nvme_ctrlr;
struct ferry_crypto_key;

struct ep_stack_opts {
	size_t size;                /* sizeof(struct ep_stack_opts) */
	int crypto_dif;             /* crypto bdev on a dif bdev on malloc (else malloc alone) */
	uint32_t block_size;        /* 512 or 4096 as the host sees it (0 = 4096) */
	uint64_t blocks;            /* namespace size in blocks (0 = 8192) */
	const char *mock_args;      /* mock device arguments (NULL: host_mem=64M,iova_size=256M) */
	const char *transport_args; /* "pcie" transport arguments (NULL: defaults) */
	/* A terminal bdev of the caller's (an nvmf initiator bdev, say) instead of the malloc
	 * bdev: the stack is built on it and it is not destroyed with the stack. With
	 * crypto_dif its blocks must be data + 8 bytes of interleaved metadata. */
	struct ferry_bdev *base;
	int crypto_only;            /* crypto directly on the base (no dif); needs base */
	const uint8_t *key;         /* AES-XTS-128 key1 || key2 (32 bytes; NULL: the sample's) */
	/* An open mock device to use (the caller's: not closed with the stack; mock_args is then
	 * ignored), e.g. one whose NIC the base bdev already connects through. NULL: open one. */
	struct ferry_device *dev;
};

struct ep_stack {
	struct ferry_device *dev;
	struct ferry_bdev *malloc_bdev, *dif_bdev, *crypto_bdev, *top;
	struct ferry_bdev *base; /* malloc_bdev, or the caller's (not destroyed here) */
	struct ferry_crypto_key *key;
	struct ferry_endpoint *ep;
	struct ferry_transport *transport;
	struct ferry_nvme_ctrlr *ctrlr;
	int mem_fd, pcie_fd; /* the device's fds (owned by the device) */
	int own_dev;         /* dev was opened by the stack (closed with it) */
};

int ep_stack_create(const struct ep_stack_opts *o, struct ep_stack **out);
void ep_stack_destroy(struct ep_stack *s);

/* Polls the endpoint until process @p pid exits (its wait status in *wstatus) or
 * @p timeout_s passes (the child is then killed and -ETIMEDOUT returned). */
int ep_stack_serve(struct ep_stack *s, pid_t pid, double timeout_s, int *wstatus);

/* Forks a host process that runs @p fn(ctx, mem_fd, pcie_fd) and exits with its return
 * value (0..255). Returns the pid or a negative errno. */
typedef int (*ep_host_fn)(void *ctx, int mem_fd, int pcie_fd);
pid_t ep_stack_fork_host(struct ep_stack *s, ep_host_fn fn, void *ctx);

/* Forks and execs @p path (ferry-nvme-host) with --mem-fd/--pcie-fd and @p argv (NULL
 * terminated) appended. Returns the pid or a negative errno. */
pid_t ep_stack_spawn_host(struct ep_stack *s, const char *path, char *const *argv);

/* The firmware's counters at one moment (ep_stack_snap()). */
struct ep_counters {
	struct ferry_mock_stats dma;
	struct ferry_accel_stats acc;
	struct ferry_pcie_transport_stats tr;
	struct ferry_nvme_ctrlr_stats ctl;
};

void ep_stack_snap(struct ep_stack *s, struct ep_counters *c);

/* One run of the host: ep_stack_snap() into *@p before, ep_stack_spawn_host(@p path, @p argv),
 * ep_stack_serve() until it exits (within @p timeout_s), ep_stack_snap() into *@p after.
 * @p snap (may be NULL) is called right after each snapshot (@p after 0, then 1) for the
 * caller's own counters. @p who prefixes the message of a host that could not start.
 * @return the host's exit status (1 when it did not exit normally), or a negative errno when
 * it could not be started or served (*@p after is then not taken). */
int ep_stack_run_host(struct ep_stack *s, const char *who, const char *path, char *const *argv,
		      double timeout_s, struct ep_counters *before, struct ep_counters *after,
		      void (*snap)(void *ctx, int after), void *ctx);

/* The counters of an nvmf initiator bdev at the two snapshots of ep_stack_run_host(): pass
 * ep_nvmf_snap with a struct ep_nvmf_snaps {.bdev = the nvmf bdev}. */
struct ep_nvmf_snaps {
	struct ferry_bdev *bdev;
	struct ferry_bdev_nvmf_stats st[2];
};
void ep_nvmf_snap(void *ctx, int after);

/*
 * Per-I/O figures between two snapshots, the data-path costs the sample and the endpoint
 * benchmark print (every figure is per I/O command completed):
 *   soc_bytes_copied    bytes copied on the SoC by plain copies: accel bytes_copied (copies
 *                       that executed, not elided, not folded into a fused operation) +
 *                       bytes_bounced (pulls/pushes materialisation inserted) + DMA data
 *                       bytes not already counted as bounces (dma_data_bytes - bytes_bounced,
 *                       if positive: bounces of host memory run on the DMA engine)
 *   dma_data_bytes      bytes the DMA engine moved beyond the queue machinery: its total minus
 *                       64 (SQE) + 16 (CQE) per command, the PRP list bytes given by the caller
 *                       per I/O command and one 4 KiB page per admin command (Identify, log
 *                       pages); -1 when the caller cannot say what the data pointers cost
 *   pool_buffers        accel pool buffers taken (bound virtual buffers and bounces)
 *   fusions             fused operations executed (declared chains)
 *   fused_output_bytes  bytes the fused operations wrote to their destinations (their final
 *                       output only: intermediate data stays in the engine)
 *   copy_ops            copy operations executed (engine + software)
 */
struct ep_io_figures {
	double ios; /* I/O commands completed between the snapshots */
	double soc_bytes_copied;
	double accel_bytes_copied, bytes_bounced, dma_data_bytes;
	double pool_buffers, fusions, fused_output_bytes, copy_ops;
	int seq_path; /* at least one accel sequence ran */
};

/* PRP list bytes the controller reads for one command moving @p len bytes that start
 * @p offset bytes into a 4 KiB page (PRP data pointers, 4 KiB memory pages). */
uint64_t ep_prp_list_bytes(uint64_t len, uint32_t offset);

/* @p dptr_bytes_per_io: bytes of PRP lists / SGL segments each I/O command fetches, or -1
 * if unknown (dma_data_bytes is then -1 and left out of soc_bytes_copied). */
void ep_io_figures(const struct ep_counters *a, const struct ep_counters *b,
		   int64_t dptr_bytes_per_io, struct ep_io_figures *f);

/* PRP list bytes each I/O of a ferry-nvme-host workload fetches, from its options (NULL
 * terminated); -1 with SGL data pointers or options this cannot read. */
int64_t ep_host_dptr_bytes(char *const *args);

/* Print the firmware's per-I/O figures between two snapshots (@p plain: no crypto/dif). */
void ep_stack_report(const struct ep_counters *a, const struct ep_counters *b, int64_t dptr,
		     int plain);

/* The path of ferry-nvme-host beside the running program. */
int ep_host_path(char *buf, size_t len);

/* Helpers of the samples that start ferry-nvmf-tgt (samples/nvmf_tgt) as their remote target. */

/* CLOCK_MONOTONIC in seconds. */
double ep_now_s(void);

/* A TCP port nothing listens on now on 127.0.0.1 (a child binds it a moment later), or -1. */
int ep_free_port(void);

/* How many arguments ep_start_target() passes on at the most. */
#define EP_TARGET_MAX_ARGS 32

/* Starts ferry-nvmf-tgt (beside the running program) with @p args (its options, NULL
 * terminated) and --ready-file /tmp/<who>.<pid>.ready, and waits up to @p wait_s seconds
 * until it listens. @p who prefixes the messages; the ready file's path is written to
 * @p ready (@p ready_len bytes; the caller unlinks it once the target ended). Returns the
 * child's pid, or a negative errno (the child, if any, is gone). */
pid_t ep_start_target(const char *who, char *const *args, double wait_s, char *ready,
		      size_t ready_len);

#endif /* NVMEH_EP_STACK_H */

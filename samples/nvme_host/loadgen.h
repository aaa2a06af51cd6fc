/*
 * A small fio-like load generator on top of the host driver: queue depth, block size,
 * read/write mix, random or sequential offsets, a number of I/Os or a duration, verify mode
 * (every block written carries its LBA and a generation; every read is checked against the
 * last write the host saw complete), an optional controller reset in the middle of the run.
 * Reports IOPS, MiB/s and latency percentiles.
 */
#ifndef NVMEH_LOADGEN_H
#define NVMEH_LOADGEN_H

#include <stdint.h>
#include <stdio.h>
#include "host_driver.h"

struct lg_opts {
	size_t size;           /* sizeof(struct lg_opts) */
	uint32_t qd;           /* I/Os in flight (spread over the queues), >= 1 */
	uint32_t bs;           /* bytes per I/O, a multiple of the block size */
	uint32_t read_pct;     /* 0..100 */
	int random;            /* random offsets (aligned to bs), else sequential */
	int verify;            /* pattern writes, checked reads */
	uint64_t ios;          /* stop after this many I/Os (0: run for `seconds`) */
	double seconds;        /* duration when ios is 0 */
	uint64_t seed;         /* offsets and mix */
	enum nvmeh_dptr mode;  /* data pointers */
	uint32_t sgl_chunk;    /* NVMEH_SGL_SPLIT */
	uint32_t sgl_per_seg;  /* NVMEH_SGL_SPLIT */
	uint32_t buf_offset;   /* byte offset of the data in its buffer (dword aligned; PRP1
				 offset) */
	uint64_t range_blocks; /* LBAs used from 0 (0: the whole namespace) */
	uint64_t reset_after;  /* > 0: reset the controller once after this many I/Os */
	int prefill;           /* write the range sequentially before the measured phase */
	int format;            /* Write Zeroes over the range first (every block then reads as
				  zeroes: needed below a DIF bdev, whose unwritten blocks fail
				  the PI check) */
};

struct lg_result {
	uint64_t ios, reads, writes, bytes;
	uint64_t errors;        /* completed with an NVMe error status */
	uint64_t verify_errors; /* reads whose data did not match */
	uint64_t reset_dropped; /* I/Os the reset dropped (writes among them are undetermined) */
	uint64_t resets;
	uint64_t irqs;        /* interrupts of the I/O queues during the run */
	uint16_t first_error; /* first non-zero NVMe status seen */
	double seconds, iops, mibps;
	double lat_avg_us, lat_p50_us, lat_p99_us, lat_p999_us, lat_max_us;
};

struct lg;

/* Creates the generator's state (buffers, verify maps) for controller @p c. */
int lg_create(struct nvmeh_ctrlr *c, const struct lg_opts *o, struct lg **out);
/* Runs the workload (prefill first if asked); may be called several times. */
int lg_run(struct lg *g, struct lg_result *r);
/* Reads every block of the range back and checks it (verify mode only); returns the number
 * of blocks that do not hold the data of the last completed write (or, for a block whose write
 * a reset dropped, that write's or the previous data). */
int lg_verify_all(struct lg *g, uint64_t *bad_blocks);
void lg_destroy(struct lg *g);

void lg_print(const struct lg_result *r, const struct lg_opts *o, int json, FILE *f);

#endif /* NVMEH_LOADGEN_H */

/*
 * ferry-bench suite "rdma": what its files share (bench_rdma.c: the verbs cases and the
 * suite's entry; bench_rdma_nvmf.c: the NVMe-oF/RDMA cases).
 */
#ifndef FERRY_BENCH_RDMA_H
#define FERRY_BENCH_RDMA_H

#include <ferry/device.h>
#include <ferry/hal/rdma.h>

/* The mock device of --nic mock: an NVMe function (host memory) and a NIC function (its NIC
 * class has the RDMA part by default). */
#define BENCH_RDMA_MOCK_ARGS "functions=nvme:nic"

/* The RDMA NIC of a run (--nic, --addr). */
struct bench_rdma_nic {
	struct ferry_device *dev;
	const struct ferry_hal_rdma_ops *ops;
	struct ferry_hal_rdma_info info;
	int mock;      /* the mock backend's RDMA (no verbs device: no perftest reference) */
	char host[64]; /* the address to listen on / connect to, "a.b.c.d" */
	char why[256]; /* bench_rdma_open() failed: why */
};

/* Open the NIC --nic names (none: rxe0 if it opens, else mock). @return 0; -ENODEV with the
 * reason in n->why. */
int bench_rdma_open(struct bench_rdma_nic *n);
void bench_rdma_close(struct bench_rdma_nic *n);

/* The NVMe-oF/RDMA cases (bench_rdma_nvmf.c); a weak reference: absent, they are skipped. */
void bench_rdma_nvmf(int json);

#endif /* FERRY_BENCH_RDMA_H */

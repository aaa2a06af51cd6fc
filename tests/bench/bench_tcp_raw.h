/*
 * The raw loopback TCP reference of the nvmf-tcp benchmark (bench_tcp_raw.c).
 */
#ifndef FERRY_BENCH_TCP_RAW_H
#define FERRY_BENCH_TCP_RAW_H

#include <stddef.h>

/* GB/s (1e9) of one loopback TCP stream of @p msg-byte messages for @p seconds; @p busy:
 * non-blocking sockets spun on EAGAIN at both ends, else blocking; the sender on CPU
 * @p send_cpu, the receiver on @p recv_cpu (-1: not pinned). */
double bench_tcp_raw_gbps(size_t msg, int busy, double seconds, int send_cpu, int recv_cpu);

#endif /* FERRY_BENCH_TCP_RAW_H */

/*
 * nvmf_target: the smallest complete NVMe-oF/TCP target. One 64 MiB RAM namespace, one
 * subsystem, one listener, served from this thread until Ctrl-C.
 *
 *   nvmf_target [ADDR:PORT]        (default 127.0.0.1:4420)
 *   nvme discover -t tcp -a 127.0.0.1 -s 4420
 *   nvme connect -t tcp -a 127.0.0.1 -s 4420 -n nqn.2026-12.io.ferry:sample
 */
#include <signal.h>
#include <stdio.h>
#include <ferry/bdev.h>
#include <ferry/bdev_malloc.h>
#include <ferry/log.h>
#include <ferry/nvme.h>
#include <ferry/transport.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	const char *addr = argc > 1 ? argv[1] : "127.0.0.1:4420";
	struct ferry_bdev *bdev = NULL;
	struct ferry_nvme_subsystem *subsys = NULL;
	struct ferry_transport *tr = NULL;
	int rc;

	/* 1. Storage: a RAM bdev of 131072 blocks of 512 bytes. */
	struct ferry_bdev_malloc_opts mo = {.size = sizeof(mo),
					    .name = "malloc0",
					    .block_size = 512,
					    .num_blocks = 131072};
	rc = ferry_bdev_malloc_create(&mo, &bdev);
	/* 2. A subsystem with the bdev as namespace 1. */
	struct ferry_nvme_subsystem_opts so = {.size = sizeof(so),
					       .nqn = "nqn.2026-12.io.ferry:sample",
					       .serial = "FERRY0001"};
	if (!rc)
		rc = ferry_nvme_subsystem_create(&so, &subsys);
	struct ferry_nvme_ns_opts no = {.size = sizeof(no), .bdev = bdev, .nsid = 1};
	if (!rc)
		rc = ferry_nvme_subsystem_add_ns(subsys, &no, NULL);
	/* 3. The NVMe/TCP transport (it opens the "tcp" socket backend itself) and a listener. */
	if (!rc)
		rc = ferry_transport_create("tcp", NULL, &tr);
	if (!rc)
		rc = ferry_transport_listen(tr, subsys, addr);
	if (rc) {
		fprintf(stderr, "nvmf_target: %s\n", ferry_last_error());
		goto out;
	}
	printf("nvmf_target: %s listening on %s (Ctrl-C stops)\n", so.nqn, addr);
	fflush(stdout);

	/* 4. Serve: accept connections, execute commands, send responses. */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop)
		ferry_transport_poll(tr, 0);

out:
	/* Destroying the transport closes the connections and their controllers. */
	ferry_transport_destroy(tr);
	ferry_nvme_subsystem_destroy(subsys);
	ferry_bdev_destroy(bdev);
	return rc ? 1 : 0;
}

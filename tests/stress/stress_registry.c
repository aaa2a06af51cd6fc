/*
 * Stress: the registries from many threads at once. Memory domains created, looked up and
 * destroyed (plus a name two threads race for) while another thread enumerates; mock devices
 * opened and closed (each brings an engine thread and function domains); null bdevs created,
 * claimed and destroyed, one shared bdev whose claim passes between threads while a watcher
 * reads the owner; transport plugins and HAL backends registered, used and unregistered while
 * others look them up. Every result is checked (exactly one winner, -EEXIST/-EBUSY where due).
 */
#include <errno.h>
#include <ferry/hal/hal.h>
#include <ferry/bdev_malloc.h>
#include <ferry/bdev_null.h>
#include <ferry/module/transport.h>
#include <ferry/module/memdomain.h>
#include "stress.h"

#define NDOM 3u /* domain threads */
#define NBDEV 2u
#define NSTABLE 4u

static uint64_t deadline;
static atomic_int workers_left;
static struct ferry_memdomain *stable[NSTABLE];
static struct ferry_bdev *shared_bdev;
static atomic_uint_fast64_t dup_wins, claims, rounds_total;

static const struct ferry_memdomain_ops dom_ops = {.abi_version = FERRY_MEMDOMAIN_OPS_ABI};

static int done(void)
{
	return st_now_ns() >= deadline;
}

static void *domains(void *arg)
{
	uint32_t t = *(uint32_t *)arg;
	uint64_t k = 0;
	while (!done() || k < 16) {
		char name[48];
		snprintf(name, sizeof(name), "stress.dom.%u.%llu", t, (unsigned long long)k);
		struct ferry_memdomain_opts o = {.size = sizeof(o),
						 .type = FERRY_MEMDOMAIN_VENDOR_FIRST + t,
						 .name = name,
						 .ops = &dom_ops,
						 .user_ctx = &k};
		struct ferry_memdomain *d = NULL;
		int rc = ferry_memdomain_create(&o, &d);
		ST_CHECK(rc == 0, "create %s: %d", name, rc);
		ST_CHECK(ferry_memdomain_lookup(name) == d, "lookup %s", name);
		ST_CHECK(strcmp(ferry_memdomain_get_name(d), name) == 0 &&
				 ferry_memdomain_get_ctx(d) == &k &&
				 (uint32_t)ferry_memdomain_get_type(d) ==
					 FERRY_MEMDOMAIN_VENDOR_FIRST + t,
			 "getters of %s", name);
		/* The same name from every domain thread: exactly one create may win. */
		struct ferry_memdomain_opts dup = o;
		dup.name = "stress.dom.dup";
		struct ferry_memdomain *dd = NULL;
		rc = ferry_memdomain_create(&dup, &dd);
		ST_CHECK(rc == 0 || rc == -EEXIST, "dup create: %d", rc);
		ferry_memdomain_destroy(d);
		ST_CHECK(ferry_memdomain_lookup(name) == NULL, "%s still found after destroy",
			 name);
		if (rc == 0) {
			ST_CHECK(ferry_memdomain_lookup("stress.dom.dup") == dd, "dup lookup");
			atomic_fetch_add_explicit(&dup_wins, 1, memory_order_relaxed);
			ferry_memdomain_destroy(dd);
		}
		k++;
	}
	atomic_fetch_add_explicit(&rounds_total, k, memory_order_relaxed);
	return NULL;
}

/* Enumerates while others create and destroy. The stable domains were created first, so they
 * come first in creation order: the walk stops at the last one and never passes a domain that
 * another thread may destroy as @p prev (the enumeration contract of ferry/memdomain.h). */
static void *enumerate(void *arg)
{
	(void)arg;
	while (atomic_load(&workers_left) > 0) {
		uint32_t seen = 0;
		struct ferry_memdomain *d = ferry_memdomain_first(FERRY_MEMDOMAIN_ANY);
		ST_CHECK(d == ferry_memdomain_system(), "the system domain comes first");
		while (d && seen < NSTABLE) {
			if (d == stable[seen])
				seen++;
			if (seen < NSTABLE)
				d = ferry_memdomain_next(d, FERRY_MEMDOMAIN_ANY);
		}
		ST_CHECK(seen == NSTABLE, "enumeration saw %u of %u stable domains", seen, NSTABLE);
		d = ferry_memdomain_first(FERRY_MEMDOMAIN_VENDOR_LAST);
		ST_CHECK(d == stable[0], "typed enumeration");
		for (uint32_t i = 0; i < NSTABLE; i++)
			ST_CHECK(ferry_memdomain_lookup(ferry_memdomain_get_name(stable[i])) ==
					 stable[i],
				 "lookup stable %u", i);
	}
	return NULL;
}

/* Mock devices opened and closed: engine threads, shared memory, function domains. */
static void *devices(void *arg)
{
	(void)arg;
	uint64_t n = 0;
	while (!done() || n < 4) {
		struct ferry_device *dev = NULL;
		int rc = ferry_device_open("mock", "host_mem=64K,iova_size=64K,functions=a:b",
					   &dev);
		ST_CHECK(rc == 0, "device open: %d", rc);
		char name[96];
		snprintf(name, sizeof(name), "%s.b", ferry_device_get_name(dev));
		struct ferry_memdomain *d = ferry_memdomain_lookup(name);
		ST_CHECK(d && ferry_memdomain_get_type(d) == FERRY_MEMDOMAIN_PCIE, "domain %s",
			 name);
		ferry_device_close(dev);
		ST_CHECK(ferry_memdomain_lookup(name) == NULL, "%s left behind", name);
		n++;
	}
	return NULL;
}

static void *bdevs(void *arg)
{
	uint32_t t = *(uint32_t *)arg;
	char owner[16];
	snprintf(owner, sizeof(owner), "owner%u", t);
	uint64_t k = 0;
	while (!done() || k < 16) {
		char name[48];
		snprintf(name, sizeof(name), "stress.bdev.%u.%llu", t, (unsigned long long)k);
		struct ferry_bdev_null_opts o = {.size = sizeof(o),
						   .name = name,
						   .block_size = 512,
						   .num_blocks = 8};
		struct ferry_bdev *b = NULL;
		int rc = ferry_bdev_null_create(&o, &b);
		ST_CHECK(rc == 0, "null create %s: %d", name, rc);
		ST_CHECK(ferry_bdev_lookup(name) == b && ferry_bdev_get_num_blocks(b) == 8,
			 "bdev lookup");
		ST_CHECK(ferry_bdev_claim(b, owner) == 0, "claim own");
		ST_CHECK(ferry_bdev_destroy(b) == -EBUSY, "destroy of a claimed bdev");
		ferry_bdev_release(b);
		/* The shared bdev: held by at most one thread at a time. */
		rc = ferry_bdev_claim(shared_bdev, owner);
		ST_CHECK(rc == 0 || rc == -EBUSY, "shared claim: %d", rc);
		if (rc == 0) {
			const char *c = ferry_bdev_get_claim(shared_bdev);
			ST_CHECK(c && strcmp(c, owner) == 0, "claim owner '%s', expected %s",
				 c ? c : "(none)", owner);
			atomic_fetch_add_explicit(&claims, 1, memory_order_relaxed);
			ferry_bdev_release(shared_bdev);
		}
		ST_CHECK(ferry_bdev_destroy(b) == 0, "destroy");
		ST_CHECK(ferry_bdev_lookup(name) == NULL, "%s found after destroy", name);
		k++;
	}
	return NULL;
}

static struct ferry_bdev *io_bdev;
static atomic_uint_fast64_t io_writes;

static void io_cb(struct ferry_bdev_io *io, void *arg)
{
	(void)io;
	(*(int *)arg)++;
}

/* I/O to one bdev on one thread (the bdev rule), while the watcher reads its counters. */
static void *io_thread(void *arg)
{
	(void)arg;
	uint8_t buf[2 * 512];
	struct iovec iov = {buf, sizeof(buf)};
	uint64_t n = 0;
	while (!done() || n < 16) {
		int calls = 0;
		struct ferry_bdev_io io = {.type = (n % 4) ? FERRY_BDEV_IO_WRITE
							   : FERRY_BDEV_IO_FLUSH,
					   .offset_blocks = n % 7,
					   .num_blocks = 2,
					   .mem = {.iov = &iov, .iovcnt = 1},
					   .cb = io_cb,
					   .cb_arg = &calls};
		if (io.type == FERRY_BDEV_IO_FLUSH)
			io.mem.iovcnt = 0;
		int rc = ferry_bdev_submit(io_bdev, &io);
		ST_CHECK(rc == 0 && calls == 1 && io.status == 0, "null bdev I/O: %d, %d calls", rc,
			 calls);
		if (io.type == FERRY_BDEV_IO_WRITE)
			atomic_fetch_add_explicit(&io_writes, 1, memory_order_relaxed);
		n++;
	}
	return NULL;
}

/* Asks whether the shared bdev is claimed while the claim passes between threads. The owner's
 * text is not read here: another thread's release and claim may rewrite it (ferry/bdev.h). */
static void *claim_watcher(void *arg)
{
	(void)arg;
	uint64_t last_writes = 0;
	while (atomic_load(&workers_left) > 0) {
		(void)ferry_bdev_get_claim(shared_bdev);
		/* Counters of a bdev another thread does I/O on (a status display). */
		struct ferry_bdev_stats st = {.size = sizeof(st)};
		ST_CHECK(ferry_bdev_get_stats(io_bdev, &st) == 0 && st.errors == 0, "io stats");
		ST_CHECK(st.ios[FERRY_BDEV_IO_WRITE] >= last_writes, "writes went back");
		last_writes = st.ios[FERRY_BDEV_IO_WRITE];
		ST_CHECK(ferry_bdev_get_block_size(shared_bdev) == 512, "getter");
		uint32_t n = 0;
		for (struct ferry_bdev *b = ferry_bdev_first(); b && n < 1; b = ferry_bdev_next(b))
			if (b == shared_bdev)
				n++;
		ST_CHECK(n == 1, "enumeration misses the shared bdev");
	}
	return NULL;
}

static const struct ferry_transport_ops tr_ops = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						  .name = "stress_tr",
						  .kind = FERRY_TRANSPORT_MEMORY};
/* Another plugin under the same name: refused with -EEXIST while tr_ops is registered. */
static const struct ferry_transport_ops tr_clash = {.abi_version = FERRY_TRANSPORT_OPS_ABI,
						    .name = "stress_tr",
						    .kind = FERRY_TRANSPORT_MEMORY};

static int stress_open(struct ferry_device *dev, const char *args)
{
	(void)args;
	ferry_hal_dev_set_priv(dev, dev);
	return 0;
}

static void stress_close(struct ferry_device *dev)
{
	ferry_hal_dev_set_priv(dev, NULL);
}

static const struct ferry_hal_backend be = {.abi_version = FERRY_HAL_ABI_VERSION,
					    .name = "stress_be",
					    .open = stress_open,
					    .close = stress_close};

/* Registers and unregisters a transport plugin and a backend (the owner of both). */
static void *plugin_owner(void *arg)
{
	(void)arg;
	while (atomic_load(&workers_left) > 0) {
		int rc;
		do /* the user's clashing plugin may hold the name for a moment */
			rc = ferry_transport_register(&tr_ops);
		while (rc == -EEXIST);
		ST_CHECK(rc == 0, "transport register: %d", rc);
		rc = ferry_hal_register(&be);
		ST_CHECK(rc == 0, "backend register: %d", rc);
		sched_yield();
		do
			rc = ferry_transport_unregister(&tr_ops);
		while (rc == -EBUSY);
		ST_CHECK(rc == 0, "transport unregister: %d", rc);
		do
			rc = ferry_hal_unregister(&be);
		while (rc == -EBUSY);
		ST_CHECK(rc == 0, "backend unregister: %d", rc);
	}
	return NULL;
}

/* Uses the plugin and the backend whenever they are registered: an instance or an open
 * device keeps them registered (unregister answers -EBUSY). */
static void *plugin_user(void *arg)
{
	(void)arg;
	uint64_t uses = 0;
	while (!done() || uses == 0) {
		struct ferry_transport *t = NULL;
		int rc = ferry_transport_create("stress_tr", NULL, &t);
		ST_CHECK(rc == 0 || rc == -ENOENT, "transport create: %d", rc);
		if (rc == 0) {
			ST_CHECK(ferry_transport_find("stress_tr") == &tr_ops,
				 "a plugin with a live instance was unregistered");
			ST_CHECK(ferry_transport_get_ops(t) == &tr_ops, "instance ops");
			ferry_transport_destroy(t);
			uses++;
		}
		struct ferry_device *dev = NULL;
		rc = ferry_device_open("stress_be", NULL, &dev);
		ST_CHECK(rc == 0 || rc == -ENOENT, "backend open: %d", rc);
		if (rc == 0) {
			ST_CHECK(ferry_hal_find("stress_be") == &be,
				 "a backend with an open device was unregistered");
			ST_CHECK(ferry_hal_dev_get_priv(dev) == dev, "priv");
			ferry_device_close(dev);
			uses++;
		}
		rc = ferry_transport_register(&tr_clash);
		ST_CHECK(rc == 0 || rc == -EEXIST, "clashing register: %d", rc);
		if (rc == 0)
			ST_CHECK(ferry_transport_unregister(&tr_clash) == 0, "clash unregister");
		for (unsigned int i = 0; ferry_transport_get(i); i++)
			;
		for (unsigned int i = 0; ferry_backend_name(i); i++)
			;
		ST_CHECK(ferry_transport_find("pcie") != NULL, "built-in transport");
		ST_CHECK(ferry_hal_find("mock") != NULL, "mock backend");
	}
	return NULL;
}

struct role {
	void *(*fn)(void *);
	uint32_t t;
	int counted; /* a timed worker: the watchers stop when every one of them is done */
};

static void *run_role(void *arg)
{
	struct role *r = arg;
	r->fn(&r->t);
	if (r->counted)
		atomic_fetch_sub(&workers_left, 1);
	return NULL;
}

int main(void)
{
	uint64_t t0 = st_now_ns();
	ferry_log_set_handler(st_quiet_log); /* -EEXIST/-EBUSY/-ENOENT are provoked on purpose */
	for (uint32_t i = 0; i < NSTABLE; i++) {
		char name[32];
		snprintf(name, sizeof(name), "stress.stable.%u", i);
		struct ferry_memdomain_opts o = {.size = sizeof(o),
						 .type = FERRY_MEMDOMAIN_VENDOR_LAST,
						 .name = name,
						 .ops = &dom_ops};
		ST_CHECK(ferry_memdomain_create(&o, &stable[i]) == 0, "stable domain %u", i);
	}
	struct ferry_bdev_null_opts bo = {.size = sizeof(bo),
					    .name = "stress.shared",
					    .block_size = 512,
					    .num_blocks = 1};
	ST_CHECK(ferry_bdev_null_create(&bo, &shared_bdev) == 0, "shared bdev");
	bo.name = "stress.io";
	bo.num_blocks = 16;
	ST_CHECK(ferry_bdev_null_create(&bo, &io_bdev) == 0, "io bdev");

	struct role roles[] = {
		{domains, 0, 1},   {domains, 1, 1},       {domains, 2, 1},      {bdevs, 0, 1},
		{bdevs, 1, 1},     {devices, 0, 1},       {plugin_user, 0, 1},  {io_thread, 0, 1},
		{enumerate, 0, 0}, {claim_watcher, 0, 0}, {plugin_owner, 0, 0},
	};
	uint32_t n = sizeof(roles) / sizeof(roles[0]), counted = 0;
	for (uint32_t i = 0; i < n; i++)
		counted += (uint32_t)roles[i].counted;
	atomic_store(&workers_left, (int)counted);
	deadline = st_now_ns() + st_run_ns(1000);
	st_run_threads(n, run_role, roles, sizeof(roles[0]));

	ST_CHECK(ferry_memdomain_lookup("stress.dom.dup") == NULL, "dup left behind");
	ST_CHECK(ferry_transport_find("stress_tr") == NULL && ferry_hal_find("stress_be") == NULL,
		 "plugins left registered");
	ST_CHECK(ferry_bdev_get_claim(shared_bdev) == NULL, "shared bdev left claimed");
	ST_CHECK(ferry_bdev_destroy(shared_bdev) == 0, "shared bdev destroy");
	struct ferry_bdev_stats ios = {.size = sizeof(ios)};
	ST_CHECK(ferry_bdev_get_stats(io_bdev, &ios) == 0 &&
			 ios.ios[FERRY_BDEV_IO_WRITE] == atomic_load(&io_writes) &&
			 ios.bytes_written == atomic_load(&io_writes) * 1024,
		 "io bdev counters: %llu writes", (unsigned long long)ios.ios[FERRY_BDEV_IO_WRITE]);
	ST_CHECK(ferry_bdev_destroy(io_bdev) == 0, "io bdev destroy");
	for (uint32_t i = 0; i < NSTABLE; i++)
		ferry_memdomain_destroy(stable[i]);
	printf("stress_registry: %llu domain rounds, %llu dup wins, %llu shared claims, %.2f s\n",
	       (unsigned long long)atomic_load(&rounds_total),
	       (unsigned long long)atomic_load(&dup_wins), (unsigned long long)atomic_load(&claims),
	       (double)(st_now_ns() - t0) / 1e9);
	return 0;
}

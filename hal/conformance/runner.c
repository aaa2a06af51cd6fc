/*
 * ferry-conformance: the runner. Picks the backend under test (built in, linked in, or a
 * plugin loaded with --load), runs every registered check (CONF_TEST) of the selected classes
 * against it, each in its own forked child with a timeout (or in-process with --no-fork, for a
 * debugger), and prints TAP plus an optional JUnit XML file.
 *
 * Why a child per check: a backend under test may crash, hang or corrupt memory; one check's
 * failure must not take the rest of the run with it, and a hang must be named a hang (a
 * completion that never comes) rather than stall the vendor's CI.
 *
 * The child tells the parent what happened through a pipe, one record per line:
 *   I<text>  a CONF_INFO line        F<text>  the check failed        S<text>  it was skipped
 * No F or S record and exit status 0 means passed. Newlines inside a text become spaces.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ferry/hal/backend.h>
#include "conf.h"

/*
 * ferry_hal_load() lives in libferry (hal/src/plugin.c); declared weak so that the runner
 * still builds and runs without it (--load then reports that plugins are unsupported).
 */
#pragma weak ferry_hal_load

#define CONF_DEFAULT_SEED 0x5eedf0e77ull
#define CONF_MAX_CHECKS 1024u
#define CONF_MSG_MAX 2048u

static const struct conf_check *checks[CONF_MAX_CHECKS];
static unsigned int nchecks;
static unsigned int nchecks_dropped;

void conf_register_check(const struct conf_check *check)
{
	if (nchecks < CONF_MAX_CHECKS)
		checks[nchecks++] = check;
	else
		nchecks_dropped++;
}

const char *conf_suite_class(const char *suite);
const char *conf_suite_class(const char *suite)
{
	static const struct {
		const char *suite, *cls;
	} map[] = {
		{"hal", "dma"},      {"dma", "dma"},   {"memdomain", "dma"}, {"accel", "accel"},
		{"pcie_ep", "pcie"}, {"pcie", "pcie"}, {"nic", "nic"},       {"rdma", "nic"},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].suite, suite) == 0)
			return map[i].cls;
	/* A suite named after its class with a suffix (nic_ddp, accel_chain) joins it. */
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		size_t l = strlen(map[i].suite);
		if (strncmp(map[i].suite, suite, l) == 0 && suite[l] == '_')
			return map[i].cls;
	}
	return "other";
}

/* ---- the running check's side ------------------------------------------------------------ */

enum verdict {
	V_PASS,
	V_FAIL,
	V_SKIP
};

static int in_child;      /* fork mode: records go to out_fd */
static int out_fd = -1;   /* the pipe to the parent */
static jmp_buf check_jmp; /* no-fork mode: where fail/skip return to */
static char *mem_rec;     /* no-fork mode: the records, in memory */
static size_t mem_len, mem_cap;

static void rec_put(char kind, const char *text)
{
	char line[CONF_MSG_MAX + 2];
	size_t n = 0;
	line[n++] = kind;
	for (const char *p = text; *p && n < CONF_MSG_MAX; p++)
		line[n++] = *p == '\n' || *p == '\r' ? ' ' : *p;
	line[n++] = '\n';
	if (in_child) {
		for (size_t off = 0; off < n;) {
			ssize_t w = write(out_fd, line + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return;
			off += (size_t)w;
		}
		return;
	}
	if (mem_len + n > mem_cap) {
		size_t cap = (mem_cap ? mem_cap * 2 : 4096) + n;
		char *p = realloc(mem_rec, cap);
		if (!p)
			return;
		mem_rec = p;
		mem_cap = cap;
	}
	memcpy(mem_rec + mem_len, line, n);
	mem_len += n;
}

static __attribute__((noreturn)) void leave(enum verdict v)
{
	if (in_child)
		_exit(v == V_FAIL ? 1 : 0); /* no atexit: the backend's state may be broken */
	longjmp(check_jmp, (int)v + 1);
}

void conf_fail_at(const char *file, int line, const char *fmt, ...)
{
	char msg[CONF_MSG_MAX], full[CONF_MSG_MAX + 128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const char *base = strrchr(file, '/');
	snprintf(full, sizeof(full), "%s (%s:%d)", msg, base ? base + 1 : file, line);
	rec_put('F', full);
	leave(V_FAIL);
}

void conf_skip(const char *fmt, ...)
{
	char msg[CONF_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rec_put('S', msg);
	leave(V_SKIP);
}

void conf_info(const char *fmt, ...)
{
	char msg[CONF_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rec_put('I', msg);
}

/* ---- the parent's side ------------------------------------------------------------------- */

struct result {
	enum verdict v;
	char msg[CONF_MSG_MAX];
	char *info; /* 'I' records, '\n'-separated */
	double secs;
};

static void info_add(struct result *r, const char *text, size_t len)
{
	size_t have = r->info ? strlen(r->info) : 0;
	char *p = realloc(r->info, have + len + 2);
	if (!p)
		return;
	memcpy(p + have, text, len);
	p[have + len] = '\n';
	p[have + len + 1] = '\0';
	r->info = p;
}

/* Parse the records of one check (buf, len); sets the verdict from F/S. */
static void parse_records(struct result *r, const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(buf + i, '\n', len - i);
		size_t l = nl ? (size_t)(nl - (buf + i)) : len - i;
		if (l >= 1) {
			char kind = buf[i];
			const char *t = buf + i + 1;
			if (kind == 'I') {
				info_add(r, t, l - 1);
			} else if ((kind == 'F' || kind == 'S') && r->v == V_PASS) {
				r->v = kind == 'F' ? V_FAIL : V_SKIP;
				size_t m = l - 1 < sizeof(r->msg) - 1 ? l - 1 : sizeof(r->msg) - 1;
				memcpy(r->msg, t, m);
				r->msg[m] = '\0';
			}
		}
		i += l + 1;
	}
}

static const char *sig_name(int sig)
{
	switch (sig) {
	case SIGSEGV:
		return "SIGSEGV";
	case SIGBUS:
		return "SIGBUS";
	case SIGABRT:
		return "SIGABRT";
	case SIGFPE:
		return "SIGFPE";
	case SIGILL:
		return "SIGILL";
	case SIGKILL:
		return "SIGKILL";
	case SIGTERM:
		return "SIGTERM";
	case SIGPIPE:
		return "SIGPIPE";
	case SIGTRAP:
		return "SIGTRAP";
	default:
		return "signal";
	}
}

static double now_s(void)
{
	return (double)conf_now_ns() / 1e9;
}

static void run_forked(const struct conf_check *chk, struct conf_param *param,
		       unsigned int timeout_s, struct result *r)
{
	int fds[2];
	if (pipe(fds) != 0) {
		r->v = V_FAIL;
		snprintf(r->msg, sizeof(r->msg), "runner: pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		r->v = V_FAIL;
		snprintf(r->msg, sizeof(r->msg), "runner: fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		close(fds[0]);
		in_child = 1;
		out_fd = fds[1];
		signal(SIGPIPE, SIG_DFL);
		chk->fn(param);
		fflush(NULL);
		exit(0); /* a passed check exits normally (a sanitizer's leak check runs) */
	}
	close(fds[1]);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int timed_out = 0;
	uint64_t deadline = conf_now_ns() + (uint64_t)timeout_s * 1000000000ull;
	for (;;) {
		uint64_t now = conf_now_ns();
		if (now >= deadline) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		uint64_t left_ms = (deadline - now) / 1000000ull + 1;
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int pr = poll(&pfd, 1, left_ms > 1000 ? 1000 : (int)left_ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		if (len + 4096 > cap) {
			char *p = realloc(buf, cap ? cap * 2 : 8192);
			if (!p)
				break;
			buf = p;
			cap = cap ? cap * 2 : 8192;
		}
		ssize_t n = read(fds[0], buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EOF: the child is gone (or closed the pipe) */
		len += (size_t)n;
	}
	close(fds[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	parse_records(r, buf, len);
	free(buf);
	if (timed_out) {
		r->v = V_FAIL;
		snprintf(r->msg, sizeof(r->msg),
			 "timed out after %u s (a hang: e.g. a completion that never comes)",
			 timeout_s);
	} else if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		char prev[CONF_MSG_MAX];
		snprintf(prev, sizeof(prev), "%s", r->msg);
		r->v = V_FAIL;
		snprintf(r->msg, sizeof(r->msg), "crashed with signal %d (%s)%s%.1900s", sig,
			 sig_name(sig), *prev ? " after: " : "", prev);
	} else if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && r->v != V_FAIL) {
		r->v = V_FAIL;
		snprintf(r->msg, sizeof(r->msg),
			 "the check's process exited with status %d without a verdict "
			 "(exit() called by the backend, or a sanitizer report)",
			 WEXITSTATUS(st));
	} else if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && r->v == V_FAIL) {
		/* cannot happen (a failure exits 1); kept as a failure */
	}
}

static void run_inline(const struct conf_check *chk, struct conf_param *param, struct result *r)
{
	in_child = 0;
	mem_len = 0;
	int j = setjmp(check_jmp);
	if (j == 0)
		chk->fn(param);
	parse_records(r, mem_rec, mem_len);
}

/* ---- output ------------------------------------------------------------------------------ */

static void xml_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		default:
			if (c < 0x20 && c != '\t')
				fputc(' ', f);
			else
				fputc(c, f);
		}
	}
}

static int write_junit(const char *path, const char *backend, const struct conf_check **run,
		       const struct result *res, unsigned int n, unsigned int failed,
		       unsigned int skipped)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "ferry-conformance: --junit %s: %s\n", path, strerror(errno));
		return -errno;
	}
	double total = 0;
	for (unsigned int i = 0; i < n; i++)
		total += res[i].secs;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(f, "<testsuite name=\"ferry-conformance.");
	xml_escape(f, backend);
	fprintf(f, "\" tests=\"%u\" failures=\"%u\" errors=\"0\" skipped=\"%u\" time=\"%.3f\">\n",
		n, failed, skipped, total);
	for (unsigned int i = 0; i < n; i++) {
		fprintf(f, "  <testcase classname=\"%s.", conf_suite_class(run[i]->suite));
		xml_escape(f, run[i]->suite);
		fprintf(f, "\" name=\"");
		xml_escape(f, run[i]->name);
		fprintf(f, "\" time=\"%.3f\"", res[i].secs);
		if (res[i].v == V_PASS && !res[i].info) {
			fprintf(f, "/>\n");
			continue;
		}
		fprintf(f, ">\n");
		if (res[i].v != V_PASS) {
			fprintf(f, "    <%s message=\"",
				res[i].v == V_FAIL ? "failure" : "skipped");
			xml_escape(f, res[i].msg);
			fprintf(f, "\"/>\n");
		}
		if (res[i].info) {
			fprintf(f, "    <system-out>");
			xml_escape(f, res[i].info);
			fprintf(f, "</system-out>\n");
		}
		fprintf(f, "  </testcase>\n");
	}
	fprintf(f, "</testsuite>\n");
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		fprintf(stderr, "ferry-conformance: writing %s failed\n", path);
		return -EIO;
	}
	return 0;
}

static void list_backends(FILE *f)
{
	for (unsigned int i = 0; ferry_hal_get(i); i++)
		fprintf(f, "  %s\n", ferry_hal_get(i)->name);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ferry-conformance --backend NAME [--args \"k=v,...\"] [--class C]...\n"
		"                         [--seed N] [--junit FILE] [--load PLUGIN]... [--only GLOB]\n"
		"                         [--hooks NAME] [--timeout S] [--no-fork] [--list]\n"
		"                         [--list-backends]\n"
		"Runs the HAL contract checks against one backend and prints TAP.\n"
		"  --backend NAME   the registered backend to test (built in or from --load)\n"
		"  --args STR       device arguments passed to ferry_device_open (default \"\")\n"
		"  --class C        only the checks of class C: dma, accel, pcie, nic (repeatable)\n"
		"  --seed N         seed of every random choice (default 0x%llx)\n"
		"  --junit FILE     also write JUnit XML to FILE\n"
		"  --load PLUGIN    load a backend plugin (path or name, see ferry_hal_load)\n"
		"  --only GLOB      only the checks whose suite.name matches GLOB\n"
		"  --hooks NAME     use the test hooks of built-in backend NAME (a backend derived\n"
		"                   from it, e.g. the mock, shares its host side; default: its own)\n"
		"  --timeout S      seconds per check before it counts as a hang (default 60)\n"
		"  --no-fork        run the checks in this process (for a debugger)\n"
		"  --list           print the checks (suite.name class) and exit\n"
		"  --list-backends  print the registered backends and exit\n"
		"Exit status: 0 no check failed, 1 some failed, 2 usage or backend error.\n",
		(unsigned long long)CONF_DEFAULT_SEED);
}

static int class_valid(const char *c)
{
	return !strcmp(c, "dma") || !strcmp(c, "accel") || !strcmp(c, "pcie") || !strcmp(c, "nic");
}

#define MAX_CLASSES 8
#define MAX_LOADS 16

int main(int argc, char **argv)
{
	const char *backend = NULL, *args = "", *junit = NULL, *only = NULL;
	const char *classes[MAX_CLASSES], *loads[MAX_LOADS];
	unsigned int nclasses = 0, nloads = 0, timeout_s = 60;
	uint64_t seed = CONF_DEFAULT_SEED;
	int do_fork = 1, list = 0, list_be = 0;
	const char *hooks = NULL;
	enum {
		O_NOFORK = 256,
		O_LISTBE,
		O_HOOKS
	};
	static const struct option opts[] = {
		{"backend", required_argument, NULL, 'b'},
		{"args", required_argument, NULL, 'a'},
		{"class", required_argument, NULL, 'c'},
		{"seed", required_argument, NULL, 's'},
		{"junit", required_argument, NULL, 'j'},
		{"load", required_argument, NULL, 'L'},
		{"only", required_argument, NULL, 'o'},
		{"timeout", required_argument, NULL, 't'},
		{"no-fork", no_argument, NULL, O_NOFORK},
		{"list", no_argument, NULL, 'l'},
		{"list-backends", no_argument, NULL, O_LISTBE},
		{"hooks", required_argument, NULL, O_HOOKS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "b:a:c:s:j:L:o:t:lh", opts, NULL)) != -1) {
		char *end;
		switch (o) {
		case 'b':
			backend = optarg;
			break;
		case 'a':
			args = optarg;
			break;
		case 'c':
			if (!class_valid(optarg) || nclasses == MAX_CLASSES) {
				fprintf(stderr,
					"ferry-conformance: --class %s: want dma, accel, "
					"pcie or nic\n",
					optarg);
				return 2;
			}
			classes[nclasses++] = optarg;
			break;
		case 's':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end) {
				fprintf(stderr, "ferry-conformance: --seed %s: not a number\n",
					optarg);
				return 2;
			}
			break;
		case 'j':
			junit = optarg;
			break;
		case 'L':
			if (nloads == MAX_LOADS) {
				fprintf(stderr, "ferry-conformance: at most %d --load\n",
					MAX_LOADS);
				return 2;
			}
			loads[nloads++] = optarg;
			break;
		case 'o':
			only = optarg;
			break;
		case 't': {
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v == 0 || v > 86400) {
				fprintf(stderr,
					"ferry-conformance: --timeout %s: want 1..86400 s\n",
					optarg);
				return 2;
			}
			timeout_s = (unsigned int)v;
			break;
		}
		case O_NOFORK:
			do_fork = 0;
			break;
		case 'l':
			list = 1;
			break;
		case O_LISTBE:
			list_be = 1;
			break;
		case O_HOOKS:
			hooks = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ferry-conformance: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (hooks && conf_hooks_use(hooks) != 0) {
		fprintf(stderr, "ferry-conformance: --hooks %s: no built-in backend has hooks of that "
				"name\n",
			hooks);
		return 2;
	}
	if (nchecks_dropped) {
		fprintf(stderr, "ferry-conformance: more than %u checks registered\n",
			CONF_MAX_CHECKS);
		return 2;
	}

	const struct ferry_hal_backend *loaded = NULL;
	for (unsigned int i = 0; i < nloads; i++) {
		if (!ferry_hal_load) {
			fprintf(stderr,
				"ferry-conformance: --load %s: this libferry cannot load "
				"plugins (no ferry_hal_load)\n",
				loads[i]);
			return 2;
		}
		int rc = ferry_hal_load(loads[i], &loaded);
		if (rc < 0) {
			fprintf(stderr, "ferry-conformance: --load %s: %s (%s)\n", loads[i],
				ferry_strerror(rc), conf_last_error());
			return 2;
		}
	}
	if (list_be) {
		list_backends(stdout);
		return 0;
	}
	if (!backend && nloads == 1 && loaded)
		backend = loaded->name;

	/* The checks selected, in registration order (the order of the check files). */
	const struct conf_check **run = calloc(nchecks ? nchecks : 1, sizeof(*run));
	struct result *res = calloc(nchecks ? nchecks : 1, sizeof(*res));
	if (!run || !res) {
		fprintf(stderr, "ferry-conformance: out of memory\n");
		return 2;
	}
	unsigned int n = 0;
	for (unsigned int i = 0; i < nchecks; i++) {
		const char *cls = conf_suite_class(checks[i]->suite);
		int pick = nclasses == 0;
		for (unsigned int k = 0; k < nclasses; k++)
			pick |= strcmp(classes[k], cls) == 0;
		char full[160];
		snprintf(full, sizeof(full), "%s.%s", checks[i]->suite, checks[i]->name);
		if (pick && only && fnmatch(only, full, 0) != 0)
			pick = 0;
		if (pick)
			run[n++] = checks[i];
	}
	if (list) {
		for (unsigned int i = 0; i < n; i++)
			printf("%s.%s %s\n", run[i]->suite, run[i]->name,
			       conf_suite_class(run[i]->suite));
		return 0;
	}
	if (!backend) {
		fprintf(stderr, "ferry-conformance: --backend NAME is required; registered:\n");
		list_backends(stderr);
		usage(stderr);
		return 2;
	}
	const struct ferry_hal_backend *b = ferry_hal_find(backend);
	if (!b) {
		fprintf(stderr, "ferry-conformance: no backend '%s'; registered:\n", backend);
		list_backends(stderr);
		return 2;
	}
	struct conf_param param = {.args = args, .seed = seed};
	for (unsigned int i = 0; ferry_hal_get(i); i++)
		if (ferry_hal_get(i) == b)
			param.index = i;
	snprintf(param.name, sizeof(param.name), "%s", b->name);

	printf("TAP version 13\n");
	printf("1..%u\n", n);
	printf("# ferry-conformance: backend %s, args \"%s\", seed 0x%" PRIx64 " (--seed 0x%" PRIx64
	       " repeats this run)\n",
	       param.name, args, seed, seed);
	unsigned int passed = 0, failed = 0, skipped = 0;
	for (unsigned int i = 0; i < n; i++) {
		struct result *r = &res[i];
		double t0 = now_s();
		conf_cur = param.name;
		if (do_fork)
			run_forked(run[i], &param, timeout_s, r);
		else
			run_inline(run[i], &param, r);
		r->secs = now_s() - t0;
		if (r->v == V_PASS) {
			printf("ok %u - %s.%s\n", i + 1, run[i]->suite, run[i]->name);
			passed++;
		} else if (r->v == V_SKIP) {
			printf("ok %u - %s.%s # SKIP %s\n", i + 1, run[i]->suite, run[i]->name,
			       r->msg);
			skipped++;
		} else {
			printf("not ok %u - %s.%s: %s\n", i + 1, run[i]->suite, run[i]->name,
			       r->msg);
			failed++;
		}
		for (const char *p = r->info; p && *p;) {
			size_t l = strcspn(p, "\n");
			printf("# %.*s\n", (int)l, p);
			p += l + (p[l] == '\n');
		}
	}
	printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
	int rc = failed ? 1 : 0;
	if (junit && write_junit(junit, param.name, run, res, n, failed, skipped) != 0)
		rc = 2;
	for (unsigned int i = 0; i < n; i++)
		free(res[i].info);
	free(res);
	free(run);
	free(mem_rec);
	return rc;
}

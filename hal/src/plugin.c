/*
 * Backend plugins: ferry_hal_load() finds a shared object, checks its entry point's versions
 * and registers the backend it provides.
 *
 * Why RTLD_NOW: a plugin with an unresolved symbol is refused here, with dlopen()'s reason,
 * instead of crashing on its first call inside an engine thread. Why RTLD_LOCAL: two plugins
 * may both define helpers of the same name; only the entry symbol is looked up, by handle.
 *
 * A plugin stays loaded for the life of the process once registered: its tables are static
 * storage inside it and the registry references them (no unload, as in rdma-core's providers).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <ferry/hal/hal.h>
#include "core_internal.h"

#define COMP "hal"

#ifndef FERRY_PLUGIN_DIR
#define FERRY_PLUGIN_DIR "/usr/local/lib/ferry/backends"
#endif

static int is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The file names tried in each directory for @p what (a name or a file name). */
static int candidates(const char *what, char out[3][NAME_MAX + 1])
{
	size_t len = strlen(what);
	if (len > 3 && strcmp(what + len - 3, ".so") == 0) {
		if (len > NAME_MAX)
			return 0;
		memcpy(out[0], what, len + 1);
		return 1;
	}
	if (len + sizeof("libferry-.so") - 1 > NAME_MAX)
		return 0;
	snprintf(out[0], NAME_MAX + 1, "libferry-%s.so", what);
	snprintf(out[1], NAME_MAX + 1, "libferry_%s.so", what);
	snprintf(out[2], NAME_MAX + 1, "%s.so", what);
	return 3;
}

/* Try every candidate in @p dir (a @p dlen-byte slice); 1 and @p path set when found. */
static int search_dir(const char *dir, size_t dlen, char names[3][NAME_MAX + 1], int n, char *path,
		      size_t plen)
{
	if (dlen == 0) /* an empty entry of the path: skipped, not the current directory */
		return 0;
	for (int i = 0; i < n; i++) {
		int w = snprintf(path, plen, "%.*s/%s", (int)dlen, dir, names[i]);
		if (w > 0 && (size_t)w < plen && is_file(path))
			return 1;
	}
	return 0;
}

/*
 * <directory of the object that holds this code>/ferry/backends: the plugin directory of an
 * install that was moved after it was configured (libferry.so in <prefix>/<libdir>). For a
 * program linked with libferry.a it is beside the program. 1 and @p out set, or 0.
 */
static int own_plugin_dir(char *out, size_t len)
{
	Dl_info info;
	if (!dladdr((void *)(uintptr_t)&ferry_hal_load, &info) || !info.dli_fname)
		return 0;
	const char *slash = strrchr(info.dli_fname, '/');
	if (!slash)
		return 0;
	int w = snprintf(out, len, "%.*s/ferry/backends", (int)(slash - info.dli_fname),
			 info.dli_fname);
	if (w <= 0 || (size_t)w >= len) {
		out[0] = 0;
		return 0;
	}
	if (strcmp(out, FERRY_PLUGIN_DIR) == 0) {
		out[0] = 0; /* the configured one, searched next anyway */
		return 0;
	}
	return 1;
}

/* Resolve @p what to a file; -ENOENT with the directories searched named in the log. */
/* Backends of the plugins this process loaded (each keeps one dlopen() reference). */
#define LOADED_MAX 64
static pthread_mutex_t loaded_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct ferry_hal_backend *loaded[LOADED_MAX];
static unsigned int nloaded;

static int loaded_has(const struct ferry_hal_backend *b)
{
	int found = 0;
	pthread_mutex_lock(&loaded_lock);
	for (unsigned int i = 0; i < nloaded && !found; i++)
		found = loaded[i] == b;
	pthread_mutex_unlock(&loaded_lock);
	return found;
}

static void loaded_add(const struct ferry_hal_backend *b)
{
	pthread_mutex_lock(&loaded_lock);
	if (nloaded < LOADED_MAX) /* past it, a reload only keeps one more reference */
		loaded[nloaded++] = b;
	pthread_mutex_unlock(&loaded_lock);
}

static int resolve(const char *what, char *path, size_t plen)
{
	if (strchr(what, '/')) {
		if (!is_file(what)) {
			FERRY_ERR(COMP, "load: plugin '%s': no such file", what);
			return -ENOENT;
		}
		if (strlen(what) >= plen) {
			FERRY_ERR(COMP, "load: plugin path '%s' too long", what);
			return -ENAMETOOLONG;
		}
		strcpy(path, what);
		return 0;
	}
	/* `ferry-conformance --load libferry-acme.so` in the vendor's build directory. */
	size_t wl = strlen(what);
	if (wl > 3 && strcmp(what + wl - 3, ".so") == 0 && is_file(what)) {
		if (snprintf(path, plen, "./%s", what) >= (int)plen) {
			FERRY_ERR(COMP, "load: plugin path '%s' too long", what);
			return -ENAMETOOLONG;
		}
		return 0;
	}
	char names[3][NAME_MAX + 1];
	int n = candidates(what, names);
	if (n == 0) {
		FERRY_ERR(COMP, "load: plugin name '%s' too long", what);
		return -ENAMETOOLONG;
	}
	const char *env = getenv("FERRY_BACKEND_PATH");
	if (env) {
		for (const char *p = env;;) {
			const char *end = strchr(p, ':');
			size_t dlen = end ? (size_t)(end - p) : strlen(p);
			if (search_dir(p, dlen, names, n, path, plen))
				return 0;
			if (!end)
				break;
			p = end + 1;
		}
	}
	/* Beside this libferry: <its dir>/ferry/backends, wherever the install was moved. */
	char own[PATH_MAX] = "";
	if (own_plugin_dir(own, sizeof(own)) &&
	    search_dir(own, strlen(own), names, n, path, plen))
		return 0;
	if (search_dir(FERRY_PLUGIN_DIR, strlen(FERRY_PLUGIN_DIR), names, n, path, plen))
		return 0;
	FERRY_ERR(COMP,
		  "load: plugin '%s' not found (tried %s%s%s%s%s in FERRY_BACKEND_PATH='%s', "
		  "in %s%sand in %s)",
		  what, names[0], n > 1 ? ", " : "", n > 1 ? names[1] : "", n > 2 ? ", " : "",
		  n > 2 ? names[2] : "", env ? env : "", own, *own ? " " : "", FERRY_PLUGIN_DIR);
	return -ENOENT;
}

FERRY_API int ferry_hal_load(const char *what, const struct ferry_hal_backend **out)
{
	if (out)
		*out = NULL;
	if (!what || !*what) {
		FERRY_ERR(COMP, "load: no plugin named (NULL or empty)");
		return -EINVAL;
	}
	char path[PATH_MAX];
	int rc = resolve(what, path, sizeof(path));
	if (rc)
		return rc;

	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror();
		FERRY_ERR(COMP, "load: plugin '%s' cannot be loaded: %s", path,
			  why ? why : "unknown dlopen() error");
		return -ENOEXEC;
	}
	(void)dlerror();
	const struct ferry_hal_plugin *e = dlsym(h, FERRY_HAL_PLUGIN_SYMBOL);
	if (!e) {
		FERRY_ERR(COMP,
			  "load: '%s' is not a Ferry backend plugin: no entry symbol %s "
			  "(FERRY_HAL_PLUGIN() missing)",
			  path, FERRY_HAL_PLUGIN_SYMBOL);
		rc = -ENOEXEC;
		goto err_close;
	}
	if (e->abi_version != FERRY_HAL_PLUGIN_ABI_VERSION) {
		FERRY_ERR(COMP,
			  "load: plugin '%s' has plugin entry ABI %u, this library speaks %u "
			  "(rebuild the plugin against this SDK)",
			  path, e->abi_version, FERRY_HAL_PLUGIN_ABI_VERSION);
		rc = -EPROTO;
		goto err_close;
	}
	if (e->hal_abi_version != FERRY_HAL_ABI_VERSION) {
		FERRY_ERR(COMP,
			  "load: plugin '%s' was built against HAL ABI %u, this library speaks %u "
			  "(rebuild the plugin against this SDK)",
			  path, e->hal_abi_version, FERRY_HAL_ABI_VERSION);
		rc = -EPROTO;
		goto err_close;
	}
	if (!e->backend) {
		FERRY_ERR(COMP, "load: plugin '%s' provides no backend (entry's backend is NULL)",
			  path);
		rc = -EINVAL;
		goto err_close;
	}
	/*
	 * Already registered. Either the same file loaded again (dlopen() returned the handle
	 * it already had, one more reference: drop that one), or a plugin that also carries
	 * FERRY_HAL_BACKEND() and so registered itself from its constructor during dlopen():
	 * then this is the only reference and the object must stay loaded.
	 */
	if (ferry_hal_find(e->backend->name ? e->backend->name : "") == e->backend) {
		const struct ferry_hal_backend *b = e->backend;
		if (loaded_has(b)) {
			dlclose(h);
		} else {
			loaded_add(b);
			FERRY_INFO(COMP, "plugin '%s' registered backend '%s' itself when loaded",
				   path, b->name);
		}
		if (out)
			*out = b;
		return 0;
	}
	rc = ferry_hal_register(e->backend);
	if (rc) {
		FERRY_ERR(COMP, "load: plugin '%s' refused at registration (%s)", path,
			  rc == -EEXIST ? "a backend of that name is already registered"
					: strerror(-rc));
		goto err_close;
	}
	loaded_add(e->backend);
	FERRY_INFO(COMP, "loaded plugin '%s' (backend '%s', built against Ferry %u.%u.%u)", path,
		   e->backend->name, e->ferry_version >> 16, (e->ferry_version >> 8) & 0xff,
		   e->ferry_version & 0xff);
	if (out)
		*out = e->backend;
	return 0;

err_close:
	dlclose(h);
	return rc;
}

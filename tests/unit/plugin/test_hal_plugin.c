/*
 * ferry_hal_load(): a plugin is found by path or by name (FERRY_BACKEND_PATH), its entry
 * versions are checked before any table is used, its backend is registered and opens, loading
 * it twice answers with the same backend, and every bad shared object is refused with its own
 * errno and a message naming what is wrong (both versions for an ABI mismatch). Linked against
 * the shared libferry: a plugin resolves ferry_* from the same library, one registry.
 * PLUG_DIR is the directory of the built plugins (plugin_kinds.c, one per kind).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ferry/ferry.h>
#include <ferry/hal/hal.h>

static const char *plug(const char *kind)
{
	static char path[4096];
	snprintf(path, sizeof(path), "%s/libferry-plug_%s.so", PLUG_DIR, kind);
	return path;
}

static void expect_refused(const char *kind, int want, const char *msg1, const char *msg2)
{
	const struct ferry_hal_backend *b = (const void *)1;
	int rc = ferry_hal_load(plug(kind), &b);
	cr_assert_eq(rc, want, "%s: got %d (%s), want %d", kind, rc, ferry_strerror(rc), want);
	cr_assert_null(b, "%s: out must be NULL on failure", kind);
	const char *e = ferry_last_error();
	cr_assert(strstr(e, msg1), "%s: message '%s' lacks '%s'", kind, e, msg1);
	if (msg2)
		cr_assert(strstr(e, msg2), "%s: message '%s' lacks '%s'", kind, e, msg2);
}

Test(hal_plugin, good_by_path_registers_and_opens)
{
	cr_assert_null(ferry_hal_find("plug_good"));
	const struct ferry_hal_backend *b = NULL;
	cr_assert_eq(ferry_hal_load(plug("good"), &b), 0, "%s", ferry_last_error());
	cr_assert_not_null(b);
	cr_assert_str_eq(b->name, "plug_good");
	cr_assert_eq(ferry_hal_find("plug_good"), b, "the loaded backend is registered");
	struct ferry_device *dev = NULL;
	cr_assert_eq(ferry_device_open("plug_good", "", &dev), 0, "%s", ferry_last_error());
	cr_assert_eq(*(int *)ferry_hal_dev_get_priv(dev), 42, "the plugin's open ran");
	ferry_device_close(dev);
	/* out may be NULL. */
	cr_assert_eq(ferry_hal_load(plug("good"), NULL), 0);
}

Test(hal_plugin, twice_gives_the_same_backend)
{
	const struct ferry_hal_backend *a = NULL, *b = NULL;
	cr_assert_eq(ferry_hal_load(plug("good"), &a), 0, "%s", ferry_last_error());
	cr_assert_eq(ferry_hal_load(plug("good"), &b), 0, "%s", ferry_last_error());
	cr_assert_eq(a, b);
	unsigned int n = 0;
	for (unsigned int i = 0; ferry_hal_get(i); i++)
		n += strcmp(ferry_hal_get(i)->name, "plug_good") == 0;
	cr_assert_eq(n, 1, "registered %u times", n);
}

Test(hal_plugin, self_registering_plugin_stays_loaded)
{
	/* FERRY_HAL_BACKEND() in a plugin registers it from its constructor: ferry_hal_load()
	 * must keep that object loaded (its tables are in it), not drop its only reference. */
	const struct ferry_hal_backend *a = NULL, *b = NULL;
	cr_assert_eq(ferry_hal_load(plug("self_register"), &a), 0, "%s", ferry_last_error());
	cr_assert_str_eq(a->name, "plug_self");
	cr_assert_eq(ferry_hal_load(plug("self_register"), &b), 0, "%s", ferry_last_error());
	cr_assert_eq(a, b);
	struct ferry_device *dev = NULL;
	cr_assert_eq(ferry_device_open("plug_self", "", &dev), 0, "%s", ferry_last_error());
	cr_assert_eq(*(int *)ferry_hal_dev_get_priv(dev), 42);
	ferry_device_close(dev);
}

Test(hal_plugin, by_name_through_backend_path)
{
	char env[4200];
	/* An empty entry and a missing directory first: skipped, the search goes on. */
	snprintf(env, sizeof(env), "::%s/no-such-dir:%s", PLUG_DIR, PLUG_DIR);
	cr_assert_eq(setenv("FERRY_BACKEND_PATH", env, 1), 0);
	const struct ferry_hal_backend *b = NULL;
	cr_assert_eq(ferry_hal_load("plug_good", &b), 0, "%s", ferry_last_error());
	cr_assert_str_eq(b->name, "plug_good");
	/* The file name form too. */
	cr_assert_eq(ferry_hal_load("libferry-plug_good.so", &b), 0, "%s", ferry_last_error());
}

Test(hal_plugin, file_name_in_the_current_directory)
{
	/* `--load libferry-acme.so` where it was built: no FERRY_BACKEND_PATH needed. */
	cr_assert_eq(unsetenv("FERRY_BACKEND_PATH"), 0);
	cr_assert_eq(chdir(PLUG_DIR), 0);
	const struct ferry_hal_backend *b = NULL;
	cr_assert_eq(ferry_hal_load("libferry-plug_good.so", &b), 0, "%s", ferry_last_error());
	cr_assert_str_eq(b->name, "plug_good");
	/* A bare name is never looked up in the current directory. */
	cr_assert_eq(ferry_hal_load("plug_dup", NULL), -ENOENT);
}

Test(hal_plugin, not_found_names_every_place)
{
	cr_assert_eq(setenv("FERRY_BACKEND_PATH", PLUG_DIR "/no-such-dir", 1), 0);
	int rc = ferry_hal_load("acme", NULL);
	cr_assert_eq(rc, -ENOENT, "got %d", rc);
	const char *e = ferry_last_error();
	cr_assert(strstr(e, "libferry-acme.so") && strstr(e, "libferry_acme.so") &&
			  strstr(e, "acme.so"),
		  "message '%s' must name the file names tried", e);
	cr_assert(strstr(e, "no-such-dir"), "message '%s' must name FERRY_BACKEND_PATH", e);
	cr_assert(strstr(e, "ferry/backends"), "message '%s' must name the plugin directory", e);
	cr_assert_eq(ferry_hal_load(PLUG_DIR "/no-such-file.so", NULL), -ENOENT);
	cr_assert(strstr(ferry_last_error(), "no such file"), "%s", ferry_last_error());
}

Test(hal_plugin, bad_arguments)
{
	cr_assert_eq(ferry_hal_load(NULL, NULL), -EINVAL);
	cr_assert_eq(ferry_hal_load("", NULL), -EINVAL);
	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	cr_assert_eq(ferry_hal_load(longname, NULL), -ENAMETOOLONG);
}

Test(hal_plugin, older_hal_abi_refused_naming_both)
{
	char want[64];
	snprintf(want, sizeof(want), "speaks %u", FERRY_HAL_ABI_VERSION);
	expect_refused("hal_abi_old", -EPROTO, "HAL ABI 0", want);
	cr_assert_null(ferry_hal_find("plug_good"), "a refused plugin registers nothing");
}

Test(hal_plugin, older_entry_abi_refused_naming_both)
{
	char want[64];
	snprintf(want, sizeof(want), "speaks %u", FERRY_HAL_PLUGIN_ABI_VERSION);
	expect_refused("entry_abi_old", -EPROTO, "plugin entry ABI 0", want);
	cr_assert_null(ferry_hal_find("plug_good"));
}

Test(hal_plugin, no_entry_symbol)
{
	expect_refused("no_entry", -ENOEXEC, "no entry symbol", FERRY_HAL_PLUGIN_SYMBOL);
}

Test(hal_plugin, unresolved_symbol_refused_at_load)
{
	expect_refused("unresolved", -ENOEXEC, "cannot be loaded", "ferry_plug_no_such_function");
	cr_assert_null(ferry_hal_find("plug_unresolved"));
}

Test(hal_plugin, null_backend)
{
	expect_refused("null_backend", -EINVAL, "provides no backend", NULL);
}

Test(hal_plugin, bad_class_table_refused_at_registration)
{
	expect_refused("bad_table", -EPROTO, "refused at registration", NULL);
	cr_assert_null(ferry_hal_find("plug_bad_table"));
}

Test(hal_plugin, same_name_from_another_object)
{
	cr_assert_eq(ferry_hal_load(plug("good"), NULL), 0, "%s", ferry_last_error());
	expect_refused("dup", -EEXIST, "already registered", NULL);
}

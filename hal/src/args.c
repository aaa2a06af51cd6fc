/* Backend argument strings: "key=value,key=value". */
#include <string.h>
#include <ferry/hal/backend.h>
#include "core_internal.h"

#define COMP "hal-args"

/* Finds the next "key=value" item; returns 0 at the end. */
static int next_item(const char **p, const char **k, size_t *klen, const char **v, size_t *vlen)
{
	const char *s = *p;
	while (*s == ',')
		s++;
	if (!*s)
		return 0;
	const char *end = strchr(s, ',');
	if (!end)
		end = s + strlen(s);
	const char *eq = memchr(s, '=', (size_t)(end - s));
	*k = s;
	*klen = eq ? (size_t)(eq - s) : (size_t)(end - s);
	*v = eq ? eq + 1 : end;
	*vlen = eq ? (size_t)(end - eq - 1) : 0;
	*p = end;
	return 1;
}

FERRY_API int ferry_hal_arg_get(const char *args, const char *key, char *val, size_t len)
{
	if (!key || !*key) {
		FERRY_ERR(COMP, "arg_get: %s key", key ? "empty" : "NULL");
		return -EINVAL;
	}
	const char *p = args ? args : "", *k, *v;
	size_t klen, vlen, want = strlen(key);
	int found = -ENOENT;
	while (next_item(&p, &k, &klen, &v, &vlen)) {
		if (klen != want || strncmp(k, key, klen) != 0)
			continue;
		if (!val || vlen >= len)
			return -ENAMETOOLONG;
		memcpy(val, v, vlen);
		val[vlen] = '\0';
		found = 0; /* the last occurrence wins */
	}
	return found;
}

FERRY_API int ferry_hal_args_check(const char *args, const char *const *known)
{
	const char *p = args ? args : "", *k, *v;
	size_t klen, vlen;
	while (next_item(&p, &k, &klen, &v, &vlen)) {
		int ok = 0;
		for (const char *const *kn = known; kn && *kn; kn++)
			if (strlen(*kn) == klen && strncmp(*kn, k, klen) == 0)
				ok = 1;
		if (!ok || klen == 0) {
			FERRY_ERR(COMP, "unknown argument '%.*s'", (int)klen, k);
			return -EINVAL;
		}
	}
	return 0;
}

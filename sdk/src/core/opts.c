/*
 * The one size check of options and stats structs (OPTS_SIZE_CHECK, core_internal.h).
 */
#include "core_internal.h"

int opts_size_check(const char *comp, const char *what, const char *field, size_t given,
		    const char *type, size_t expected)
{
	if (given == expected)
		return 0;
	FERRY_ERR(comp, "%s: %s %zu is not sizeof(%s) = %zu", what, field, given, type, expected);
	return -EINVAL;
}

/*
 * What the fuzz targets share: CHECK(), the verdict that aborts with the target's name and
 * the failed condition (define FUZZ_NAME, the target's name as a string literal, before
 * including this), and fuzz_write_seed(), the seed corpus writers' file output (a target built
 * with its -D..._SEEDS definition is a program writing its corpus).
 */
#ifndef FERRY_FUZZ_UTIL_H
#define FERRY_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef FUZZ_NAME
#error "define FUZZ_NAME (the fuzz target's name) before including fuzz_util.h"
#endif

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, FUZZ_NAME ": check failed: %s (line %d)\n", #c, __LINE__); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Write @p n bytes of @p b to @p dir/@p name; on failure the error is printed and the
 * program exits 1. */
static inline void fuzz_write_seed(const char *dir, const char *name, const uint8_t *b, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");
	if (!fp || fwrite(b, 1, n, fp) != n) {
		perror(path);
		exit(1);
	}
	fclose(fp);
}

#endif /* FERRY_FUZZ_UTIL_H */

/*
 * Internal to the target component (sdk/src/target): the table of built-in transports.
 * Never installed.
 */
#ifndef FERRY_TARGET_INTERNAL_H
#define FERRY_TARGET_INTERNAL_H

#include <ferry/module/transport.h>

/*
 * A built-in transport registers itself from its own file with BUILTIN_TRANSPORT(ops, order):
 * the entry lands in the linker section "ferry_builtin_transports", which transport.c walks
 * between __start_/__stop_ (the linker defines both for a section named like a C identifier),
 * registering in ascending @p order before any vendor plugin. No list to edit, no extern.
 *
 * Nothing references a built-in's file by symbol, so an archive member holding one would not
 * be pulled into a static link: both libferry.a and the in-tree libferry_internal.a are built
 * from one prelinked object (sdk/CMakeLists.txt) for that reason.
 */
struct builtin_transport {
	unsigned int order; /* registration order: 0 ("pcie") first */
	const struct ferry_transport_ops *ops;
};

#define BUILTIN_TRANSPORT(ops_, order_)                                                            \
	static const struct builtin_transport builtin_transport_##ops_                             \
		__attribute__((used, section("ferry_builtin_transports"),                          \
			       aligned(_Alignof(struct builtin_transport)))) = {order_, &ops_}

/*
 * A numeric transport argument: "key=N" of @p args (decimal, or 0x hex), in @p lo..@p hi.
 * Absent: 0 and @p *val untouched (the caller's default). Malformed or out of range: -EINVAL,
 * logged for component @p comp naming the key and the range.
 */
int transport_arg_u32(const char *comp, const char *args, const char *key, uint32_t lo,
		      uint32_t hi, uint32_t *val);

/*
 * A listen address "a.b.c.d:port" / "[v6]:port" split into its address and port strings and
 * its FERRY_NVMF_ADRFAM_*. -EINVAL: malformed or too long for @p alen / @p plen.
 */
int transport_split_addr(const char *a, char *addr, size_t alen, char *port, size_t plen,
			 uint8_t *adrfam);

#endif /* FERRY_TARGET_INTERNAL_H */

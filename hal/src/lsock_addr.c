/*
 * Address strings of the socket kit: strict parsing of "a.b.c.d:port" and "[v6]:port" into
 * a sockaddr, and the reverse for get_addr(). No name resolution (it would block): numeric
 * addresses only. Every refusal is -EINVAL with a message naming the string and the rule.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include "lsock_internal.h"

/* "0".."65535", decimal digits only (no sign, no space, no leading zero but "0" itself). */
static int parse_port(const char *s, uint16_t *port)
{
	size_t n = strlen(s);
	if (n == 0 || n > 5 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
		return -EINVAL;
	unsigned long v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(s[i] - '0');
	if (v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

_Static_assert(INET6_ADDRSTRLEN - 1 + sizeof("[]:65535") <= LSOCK_ADDR_STRLEN,
	       "a parsed address string fits struct ferry_hal_sock::peer");

int lsock_addr_parse(const struct ferry_hal_lsock_dev *ld, const char *str, int listen,
		     struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN]; /* longer is no numeric address */
	const char *port_str;
	int v6;
	uint16_t port;

	if (!str) {
		LSOCK_ERR(ld, "address: NULL (\"a.b.c.d:port\" or \"[v6]:port\" required)");
		return -EINVAL;
	}
	if (str[0] == '[') {
		const char *close = strchr(str, ']');
		size_t hl = close ? (size_t)(close - str - 1) : 0;
		if (!close || hl == 0 || hl >= sizeof(host) || close[1] != ':') {
			LSOCK_ERR(ld, "address '%s': IPv6 is \"[addr]:port\"", str);
			return -EINVAL;
		}
		memcpy(host, str + 1, hl);
		host[hl] = '\0';
		port_str = close + 2;
		v6 = 1;
	} else {
		const char *colon = strrchr(str, ':');
		size_t hl = colon ? (size_t)(colon - str) : 0;
		if (!colon || hl == 0 || hl >= sizeof(host) || memchr(str, ':', hl)) {
			LSOCK_ERR(ld, "address '%s': IPv4 is \"a.b.c.d:port\" (IPv6 in brackets)",
				  str);
			return -EINVAL;
		}
		memcpy(host, str, hl);
		host[hl] = '\0';
		port_str = colon + 1;
		v6 = 0;
	}
	if (parse_port(port_str, &port)) {
		LSOCK_ERR(ld, "address '%s': port '%s' is not a decimal number 0..65535", str,
			  port_str);
		return -EINVAL;
	}
	if (port == 0 && !listen) {
		LSOCK_ERR(ld, "address '%s': cannot connect to port 0", str);
		return -EINVAL;
	}
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
			LSOCK_ERR(ld, "address '%s': '%s' is not a numeric IPv6 address", str,
				  host);
			return -EINVAL;
		}
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		/* inet_pton takes exactly four decimal parts 0..255 without leading zeros. */
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
			LSOCK_ERR(ld, "address '%s': '%s' is not a dotted-quad IPv4 address", str,
				  host);
			return -EINVAL;
		}
		*len = sizeof(*a);
	}
	return 0;
}

int lsock_addr_format(const struct ferry_hal_lsock_dev *ld, const struct sockaddr *sa, char *buf,
		      size_t len)
{
	char host[INET6_ADDRSTRLEN];
	int n;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		n = snprintf(buf, len, "%s:%u", host, (unsigned int)ntohs(a->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		n = snprintf(buf, len, "[%s]:%u", host, (unsigned int)ntohs(a->sin6_port));
	} else {
		LSOCK_ERR(ld, "get_addr: address family %d", (int)sa->sa_family);
		return -EAFNOSUPPORT;
	}
	if (n < 0 || (size_t)n >= len) {
		LSOCK_ERR(ld, "get_addr: buffer of %zu bytes too small (%d needed)", len, n + 1);
		return -ENOBUFS;
	}
	return 0;
}

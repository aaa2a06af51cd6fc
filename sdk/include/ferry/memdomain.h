/**
 * @file ferry/memdomain.h
 * @brief Memory domains: the address spaces data can live in, and the memory descriptor.
 *
 * A memory domain is an address space: local SoC memory (the system domain, which always
 * exists), the host memory seen through one PCI function's IOMMU (addresses are that
 * function's IOVAs), NIC-registered memory, the accel virtual domain, or a vendor's own.
 * Each domain carries one const ops table (pull, push, memzero, translate, invalidate, poll),
 * every member optional: a NULL member makes the wrapper return -ENOTSUP. Creating a domain
 * and its ops table are the module tier (<ferry/module/memdomain.h>), for backends and
 * modules that provide a domain.
 *
 * A ::ferry_mem describes memory *in* a domain. For any domain other than the system domain,
 * `iov_base` is an address in that domain and is never dereferenced locally.
 *
 * Asynchronous contract (pull, push, memzero): the completion callback is called exactly
 * once if and only if the call returned 0; if the call returns a negative errno the callback
 * is never called and nothing was transferred. The callback may run before the call returns
 * (synchronous domains) or later from ferry_memdomain_poll() of that domain called on the
 * thread that started the operation (a domain used by several threads delivers each thread
 * its own completions); it never runs on another thread. Buffers and iovec arrays passed to an
 * asynchronous call must stay valid until its callback has run.
 *
 * Threading: creating, destroying and enumerating domains is serialised internally and may be
 * done from any thread; a given domain's data operations follow the domain's own rules
 * (the system and mock domains accept calls from any thread). The registry serialises its
 * list, not the lifetime of a domain: a handle passed to any call (@p prev of
 * ferry_memdomain_next() included) or returned by a lookup must not be destroyed by another
 * thread meanwhile.
 */
#ifndef FERRY_MEMDOMAIN_H
#define FERRY_MEMDOMAIN_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <sys/uio.h>

FERRY_BEGIN_DECLS

/** Maximum length of a domain name, including the terminating NUL. */
#define FERRY_MEMDOMAIN_NAME_MAX 64

/** Kind of address space. */
enum ferry_memdomain_type {
	FERRY_MEMDOMAIN_SYSTEM = 0,       /**< local SoC virtual addresses (always exists) */
	FERRY_MEMDOMAIN_PCIE = 1,         /**< host memory seen through one PCI function (IOVAs) */
	FERRY_MEMDOMAIN_RDMA = 2,         /**< memory registered with an RDMA NIC */
	FERRY_MEMDOMAIN_ACCEL = 3,        /**< accel virtual domain: addresses with no memory behind */
	FERRY_MEMDOMAIN_VENDOR_FIRST = 0x100, /**< first value a vendor may use for its own types */
	FERRY_MEMDOMAIN_VENDOR_LAST = 0x1ff,  /**< last value a vendor may use */
	FERRY_MEMDOMAIN_ANY = -1,         /**< filter value: every type (enumeration only) */
};

struct ferry_memdomain;

/**
 * @brief Memory descriptor: domain + domain context + iovec array.
 *
 * The descriptor does not own the iovec array. A NULL @p domain means the system domain.
 */
struct ferry_mem {
	struct ferry_memdomain *domain; /**< domain the addresses belong to (NULL = system) */
	void *domain_ctx;               /**< per-I/O context for the domain (e.g. a key, a PASID) */
	struct iovec *iov;              /**< segments; addresses in @p domain */
	uint32_t iovcnt;                /**< number of segments */
};

/**
 * @brief Completion callback of an asynchronous domain operation.
 * @param[in] cb_arg the argument given with the call.
 * @param[in] status 0 on success, else a negative errno (-EFAULT: an address was not mapped or
 *            not permitted; -EIO: the transfer failed on the bus; -ENOMEM...).
 */
typedef void (*ferry_memdomain_cb)(void *cb_arg, int status);

/**
 * @brief The system domain (local SoC memory). It always exists and is never destroyed.
 * @return the system domain; never NULL.
 */
FERRY_API struct ferry_memdomain *ferry_memdomain_system(void);

/**
 * @brief First registered domain of @p type, in creation order; the system domain comes first.
 * @param[in] type the type to list, or FERRY_MEMDOMAIN_ANY for every type.
 * @return the first matching domain, or NULL if none.
 */
FERRY_API struct ferry_memdomain *ferry_memdomain_first(enum ferry_memdomain_type type);

/**
 * @brief Next domain after @p prev with the same filter.
 * @param[in] prev a domain returned by ferry_memdomain_first() or ferry_memdomain_next()
 *            (NULL gives NULL).
 * @param[in] type the same filter as for ferry_memdomain_first().
 * @return the next matching domain, or NULL at the end.
 */
FERRY_API struct ferry_memdomain *ferry_memdomain_next(struct ferry_memdomain *prev,
						       enum ferry_memdomain_type type);

/**
 * @brief Look a domain up by name ("system" finds the system domain).
 * @param[in] name the domain's name (NULL finds nothing).
 * @return the domain, or NULL if there is none.
 */
FERRY_API struct ferry_memdomain *ferry_memdomain_lookup(const char *name);

/**
 * @brief Type of a domain.
 * @param[in] domain the domain (NULL = system).
 * @return its type.
 */
FERRY_API enum ferry_memdomain_type ferry_memdomain_get_type(const struct ferry_memdomain *domain);

/**
 * @brief Name of a domain.
 * @param[in] domain the domain (NULL = system, "system").
 * @return its name; valid while the domain exists.
 */
FERRY_API const char *ferry_memdomain_get_name(const struct ferry_memdomain *domain);

/**
 * @brief User context given at creation (ferry_memdomain_opts::user_ctx).
 * @param[in] domain the domain (NULL = system).
 * @return the context; NULL for the system domain.
 */
FERRY_API void *ferry_memdomain_get_ctx(const struct ferry_memdomain *domain);

/**
 * @brief Pull @p src (in @p src->domain) into local memory @p dst (system domain).
 *
 * For the system domain this is a plain scatter-gather copy completed before returning.
 * @param[in] src the source, in its domain.
 * @param[in] dst the destination, in the system domain (its domain NULL or the system one).
 * @param[in] cb completion callback (not NULL).
 * @param[in] cb_arg passed to @p cb.
 * @retval 0 started; @p cb will be called exactly once.
 * @retval -EINVAL NULL descriptor or @p cb, zero segments, @p dst not in the system domain,
 *         or total lengths differ.
 * @retval -ENOTSUP the domain has no pull.
 * @retval -EFAULT an address is out of range (detected at submit time; nothing transferred).
 * @retval other negative errno from the domain; @p cb is not called.
 */
FERRY_API int ferry_memdomain_pull(const struct ferry_mem *src, const struct ferry_mem *dst,
				   ferry_memdomain_cb cb, void *cb_arg);

/**
 * @brief Push local memory @p src (system domain) into @p dst (in @p dst->domain).
 * @param[in] dst the destination, in its domain.
 * @param[in] src the source, in the system domain.
 * @param[in] cb completion callback (not NULL).
 * @param[in] cb_arg passed to @p cb.
 * @return the values of ferry_memdomain_pull() (-ENOTSUP: the domain has no push).
 */
FERRY_API int ferry_memdomain_push(const struct ferry_mem *dst, const struct ferry_mem *src,
				   ferry_memdomain_cb cb, void *cb_arg);

/**
 * @brief Zero @p mem in its domain. Same asynchronous contract as ferry_memdomain_pull().
 * @param[in] mem the range to zero.
 * @param[in] cb completion callback (not NULL).
 * @param[in] cb_arg passed to @p cb.
 * @retval 0 started; @p cb will be called exactly once.
 * @retval -EINVAL NULL @p mem or @p cb, or zero segments.
 * @retval -ENOTSUP the domain has no memzero.
 * @retval other negative errno from the domain; @p cb is not called.
 */
FERRY_API int ferry_memdomain_memzero(const struct ferry_mem *mem, ferry_memdomain_cb cb,
				      void *cb_arg);

/**
 * @brief Translate @p src into addresses of @p target; see ferry_memdomain_ops::translate.
 *
 * Translating into the domain @p src is already in copies the segments. Synchronous.
 * @param[in] src the range, in its domain.
 * @param[in] target the domain to express it in (NULL = system).
 * @param[in,out] out in: out->iov and out->iovcnt give the capacity; out: the translation.
 * @retval 0 success.
 * @retval -EINVAL NULL @p src or zero segments, or @p out has no iovec array.
 * @retval -ENOBUFS too few segments in @p out (out->iovcnt is set to the number needed).
 * @retval -ENOTSUP the domain of @p src has no translate.
 * @retval other the values of ferry_memdomain_ops::translate (-EFAULT, -EXDEV).
 */
FERRY_API int ferry_memdomain_translate(const struct ferry_mem *src,
					struct ferry_memdomain *target, struct ferry_mem *out);

/**
 * @brief Drop cached state for the range; see ferry_memdomain_ops::invalidate. Synchronous.
 * @param[in] mem the range that is no longer valid.
 * @retval 0 success.
 * @retval -EINVAL NULL @p mem or zero segments.
 * @retval -ENOTSUP the domain has no invalidate (the system domain has none).
 * @retval other negative errno from the domain.
 */
FERRY_API int ferry_memdomain_invalidate(const struct ferry_mem *mem);

/**
 * @brief Run pending completions of @p domain started on this thread.
 * @param[in] domain the domain (NULL = system, which completes everything at once).
 * @param[in] max most completions to run.
 * @return number of completions run (>= 0; 0 for a domain without poll), or a negative errno.
 */
FERRY_API int ferry_memdomain_poll(struct ferry_memdomain *domain, uint32_t max);

/**
 * @brief Total byte length of an iovec array (no overflow check: see ferry_hal_iov_total()).
 * @param[in] iov the array (NULL: length 0).
 * @param[in] iovcnt number of segments.
 * @return the sum of the segment lengths.
 */
FERRY_API size_t ferry_iov_length(const struct iovec *iov, uint32_t iovcnt);

/**
 * @brief Scatter-gather copy between two local iovec arrays of possibly different segmentation.
 * Copies min(total(dst), total(src)) bytes. Both arrays are local memory; they must not
 * overlap.
 * @param[in] dst destination segments.
 * @param[in] dst_cnt number of @p dst segments.
 * @param[in] src source segments.
 * @param[in] src_cnt number of @p src segments.
 * @return bytes copied.
 */
FERRY_API size_t ferry_iov_copy(const struct iovec *dst, uint32_t dst_cnt, const struct iovec *src,
				uint32_t src_cnt);

FERRY_END_DECLS

#endif /* FERRY_MEMDOMAIN_H */

/**
 * @file ferry/module/memdomain.h
 * @brief Providing a memory domain (module tier): the ops table a backend or module
 * implements, and creating/destroying the domain. Users of domains need only
 * <ferry/memdomain.h>, whose asynchronous contract every implementation follows.
 */
#ifndef FERRY_MODULE_MEMDOMAIN_H
#define FERRY_MODULE_MEMDOMAIN_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <sys/uio.h>
#include <ferry/memdomain.h>

FERRY_BEGIN_DECLS

/**
 * @brief One segment of a domain's memory as the SoC maps it (::ferry_memdomain_ops::export_local):
 * what a NIC backend that reaches host memory through the SoC's own mapping (software RDMA,
 * a NIC without its own view of host memory) registers.
 */
struct ferry_mem_backing {
	void *local;     /**< SoC-local address of the segment's first byte (a shared mapping) */
	uint64_t len;    /**< bytes */
	int fd;          /**< the file holding it (a memfd), -1 if none */
	uint64_t fd_off; /**< offset of the first byte in @p fd */
};

/** @name export_local() flags
 * @{ */
#define FERRY_MEM_EXPORT_F_WRITE (1u << 0) /**< the NIC will write it: every page writable */
/** A check whether the range is still exported (a registration cache revalidating): an
 *  unmapped page is an expected answer, not logged. */
#define FERRY_MEM_EXPORT_F_PROBE (1u << 1)
/** @} */

/** ABI version of ::ferry_memdomain_ops; bump when the table changes. */
#define FERRY_MEMDOMAIN_OPS_ABI 2

/**
 * @brief Ops table of a domain. Every member is optional (NULL = unsupported, the wrapper
 * returns -ENOTSUP). Implementations must follow the asynchronous contract in this file's
 * preamble and must bounds-check every address: an address outside what the domain may reach
 * fails with -EFAULT and transfers nothing.
 */
struct ferry_memdomain_ops {
	/** Required: FERRY_MEMDOMAIN_OPS_ABI. A mismatch is refused at create time (-EPROTO). */
	uint32_t abi_version;
	/**
	 * Optional. Copy from @p src (addresses in @p domain) into local memory @p dst.
	 * Total lengths of @p src and @p dst are equal (checked by the wrapper).
	 */
	int (*pull)(struct ferry_memdomain *domain, void *domain_ctx, const struct iovec *src,
		    uint32_t src_cnt, const struct iovec *dst, uint32_t dst_cnt,
		    ferry_memdomain_cb cb, void *cb_arg);
	/**
	 * Optional. Copy local memory @p src into @p dst (addresses in @p domain).
	 * Total lengths are equal (checked by the wrapper).
	 */
	int (*push)(struct ferry_memdomain *domain, void *domain_ctx, const struct iovec *dst,
		    uint32_t dst_cnt, const struct iovec *src, uint32_t src_cnt,
		    ferry_memdomain_cb cb, void *cb_arg);
	/** Optional. Zero the range @p iov (addresses in @p domain). */
	int (*memzero)(struct ferry_memdomain *domain, void *domain_ctx, const struct iovec *iov,
		       uint32_t iovcnt, ferry_memdomain_cb cb, void *cb_arg);
	/**
	 * Optional, synchronous. Express @p src (addresses in @p domain) as addresses in
	 * @p target. On entry @p out->iov points to an array of @p out->iovcnt entries (its
	 * capacity); on success @p out is filled (domain = @p target, iovcnt = segments used).
	 * A range contiguous in one view may be several segments in the other.
	 * @retval 0 success.
	 * @retval -EFAULT some part of @p src is not mapped in @p domain or in @p target.
	 * @retval -ENOBUFS @p out has too few segments (out->iovcnt is set to the number needed).
	 * @retval -EXDEV @p target is not reachable from @p domain.
	 */
	int (*translate)(struct ferry_memdomain *domain, void *domain_ctx, const struct iovec *src,
			 uint32_t src_cnt, struct ferry_memdomain *target, struct ferry_mem *out);
	/**
	 * Optional, synchronous. The range @p iov is no longer valid for this domain (e.g. the
	 * host unmapped it); drop any cached translation or registration covering it.
	 */
	int (*invalidate)(struct ferry_memdomain *domain, void *domain_ctx, const struct iovec *iov,
			  uint32_t iovcnt);
	/**
	 * Optional. Run completions of this domain's asynchronous operations that were started
	 * on the calling thread (never another thread's), at most @p max; return the number
	 * completed (>= 0) or a negative errno. NULL means the domain completes every operation
	 * before its call returns.
	 */
	int (*poll)(struct ferry_memdomain *domain, uint32_t max);
	/** Optional. Called by ferry_memdomain_destroy() before the domain is freed. */
	void (*destroy)(struct ferry_memdomain *domain);
	/**
	 * Optional, synchronous. The SoC-local backing of @p iov (addresses in @p domain), for
	 * registration with a NIC (never for CPU access: the data path still goes through the
	 * domain's ops). Only what the domain may reach is exported, with its permissions
	 * checked now (a function's IOMMU view): the segments follow the backing's contiguity
	 * (a range contiguous in the domain may be several segments).
	 * @param[in] flags FERRY_MEM_EXPORT_F_*.
	 * @param[in,out] n in: entries of @p out; out: entries used (or needed, with -ENOBUFS).
	 * @retval 0; -EFAULT a part is not mapped (or not writable with
	 *         FERRY_MEM_EXPORT_F_WRITE): logged unless FERRY_MEM_EXPORT_F_PROBE; -ENOBUFS
	 *         @p out too small (a size answer: not logged); -ENOTSUP no local backing.
	 */
	int (*export_local)(struct ferry_memdomain *domain, void *domain_ctx,
			    const struct iovec *iov, uint32_t iovcnt, uint32_t flags,
			    struct ferry_mem_backing *out, uint32_t *n);
	/**
	 * Optional. A value that changes whenever the domain's mappings change (a page mapped
	 * or unmapped: the IOMMU's generation). Registrations made from export_local() are
	 * revalidated by their user when it changed. Cheap (a load); any thread.
	 */
	uint64_t (*map_gen)(struct ferry_memdomain *domain);
};

/**
 * Domain flag (ferry_memdomain_opts::flags): two distinct addresses of this domain never
 * name the same byte, so address ranges that do not overlap are distinct memory. Set it only
 * if the domain guarantees it for every context: the system domain and the accel virtual
 * domain do; a domain seen through an IOMMU generally cannot (the host may map one page at
 * two IOVAs). Without it, consumers that reason about aliasing (the accel copy elision,
 * ferry/accel.h) treat any two ranges of the domain as possibly the same bytes.
 */
#define FERRY_MEMDOMAIN_F_NO_ALIAS (1u << 0)

/** Options of ferry_memdomain_create(). */
struct ferry_memdomain_opts {
	size_t size;                            /**< sizeof(struct ferry_memdomain_opts) */
	enum ferry_memdomain_type type;         /**< any value except SYSTEM and ANY */
	const char *name;                       /**< unique, 1..FERRY_MEMDOMAIN_NAME_MAX-1 chars */
	const struct ferry_memdomain_ops *ops;  /**< required; must outlive the domain */
	void *user_ctx;                         /**< returned by ferry_memdomain_get_ctx() */
	uint32_t flags;                         /**< FERRY_MEMDOMAIN_F_* (0: none) */
};

/**
 * @brief Create and register a memory domain.
 * @param[in] opts options (copied; the ops table itself is referenced, not copied).
 * @param[out] out the new domain.
 * @retval 0 success.
 * @retval -EINVAL bad options (size, type, empty or too long name, NULL ops).
 * @retval -EPROTO ops->abi_version differs from FERRY_MEMDOMAIN_OPS_ABI.
 * @retval -EEXIST a domain with this name exists.
 * @retval -ENOMEM out of memory.
 */
FERRY_API int ferry_memdomain_create(const struct ferry_memdomain_opts *opts,
				     struct ferry_memdomain **out);

/**
 * @brief The FERRY_MEMDOMAIN_F_* flags a domain was created with.
 * @param[in] domain the domain (NULL = system).
 * @return its flags; the system domain has FERRY_MEMDOMAIN_F_NO_ALIAS.
 */
FERRY_API uint32_t ferry_memdomain_get_flags(const struct ferry_memdomain *domain);

/**
 * @brief Unregister and free a domain created with ferry_memdomain_create().
 * The caller guarantees no operation on it is in flight. The system domain is not destroyed
 * (silently ignored). NULL is a no-op. ferry_memdomain_ops::destroy runs before the free.
 * @param[in] domain the domain; invalid after the call.
 */
FERRY_API void ferry_memdomain_destroy(struct ferry_memdomain *domain);

/**
 * @brief The SoC-local backing of @p mem; see ::ferry_memdomain_ops::export_local. The system
 * domain exports its segments as they are (fd -1).
 * @param[in] mem the range, in its domain.
 * @param[in] flags FERRY_MEM_EXPORT_F_*.
 * @param[out] out the backing segments.
 * @param[in,out] n in: entries of @p out; out: entries used (or needed, with -ENOBUFS).
 * @retval 0 success.
 * @retval -EINVAL NULL @p mem, @p out or @p n, or zero segments.
 * @retval -ENOBUFS @p out too small (*n is set to the number needed).
 * @retval -ENOTSUP the domain has no export_local.
 * @retval other the op's other values (-EFAULT).
 */
FERRY_API int ferry_memdomain_export_local(const struct ferry_mem *mem, uint32_t flags,
					   struct ferry_mem_backing *out, uint32_t *n);

/**
 * @brief The domain's mapping generation (::ferry_memdomain_ops::map_gen).
 * @param[in] domain the domain (NULL = system).
 * @return the generation; 0 for a domain without one (the system domain: its mappings never
 *         change under Ferry).
 */
FERRY_API uint64_t ferry_memdomain_map_gen(struct ferry_memdomain *domain);

FERRY_END_DECLS

#endif /* FERRY_MODULE_MEMDOMAIN_H */

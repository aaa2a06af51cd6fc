/**
 * @file ferry/module/rdma.h
 * @brief What the NVMe-oF/RDMA target and host share (module tier), socket- and verbs-free
 * where it can be: the codec of the RDMA_CM private data and of the keyed SGLs of a command
 * (<ferry/nvmf_rdma_spec.h>), and the registration map that turns a memory descriptor in any
 * domain into registered segments with keys (per segment: a range contiguous in one view may
 * be several regions in another).
 *
 * ## Parsers
 * Everything parsed here comes off the wire and is untrusted: the parsers check every field,
 * never read past the length they are given, and say what is wrong (a reject status, an NVMe
 * status) instead of failing silently. They are pure (no allocation, no global state).
 *
 * ## Registration map
 * One map per RDMA device (::ferry_hal_rdma_ops). ferry_rdma_map_mem() expresses a
 * ::ferry_mem as segments (address, length, lkey, rkey) of registered regions:
 * - system-domain memory: a region registered with ferry_rdma_map_register() that holds it
 *   (pools, staging buffers: registered once, for the map's life), else a cached
 *   registration of exactly that range (least recently used dropped past max_regions, but
 *   never while held: see ferry_rdma_map_release());
 * - memory of a domain the NIC reaches directly (::ferry_hal_rdma_info::domains), given as
 *   is or after translation into @p via: registered there (mr_reg_mem), cached;
 * - memory of another domain: translated into @p via (NVMe-function IOVA → NIC-function
 *   IOVA: the function's IOMMU view decides), then its SoC-local backing exported
 *   (ferry_memdomain_export_local()) and registered, cached. When the domain's mapping
 *   generation changes (the host unmapped pages), ferry_rdma_map_poll() and the next
 *   ferry_rdma_map_mem() revalidate the cache: a registration whose range is no longer
 *   exported is invalidated (its keys stop working) before anything else uses the map.
 * A range that cannot be expressed (not mapped in the NIC's view, no way to register it)
 * fails with -EFAULT / -EXDEV and a reason in ferry_last_error(): the caller stages the I/O.
 *
 * Threading: a map may be used from several threads (an internal lock; lookups are short).
 */
#ifndef FERRY_MODULE_RDMA_H
#define FERRY_MODULE_RDMA_H

#include <stddef.h>
#include <stdint.h>
#include <ferry/export.h>
#include <ferry/device.h>
#include <ferry/memdomain.h>
#include <ferry/nvme_spec.h>
#include <ferry/nvmf_rdma_spec.h>

FERRY_BEGIN_DECLS

/* ---- RDMA_CM private data --------------------------------------------------------------- */

/** What a controller accepts in a connect request (ferry_nvmf_rdma_cm_req_parse()). */
struct ferry_nvmf_rdma_cm_limits {
	uint16_t max_qid;         /**< highest I/O queue ID */
	uint32_t max_queue_depth; /**< entries of an I/O queue (MQES + 1) */
	uint32_t max_admin_depth; /**< entries of the admin queue */
};

/**
 * @brief Parse and check the private data of a connect request.
 * @param[in] pdata the private data received (NULL only with @p len 0).
 * @param[in] len its length; at least 32 bytes (more is accepted).
 * @param[in] lim what the controller accepts.
 * @param[out] out the fields (valid on success).
 * @param[out] sts on -EPROTO: the FERRY_NVMF_RDMA_CM_* status to reject with.
 * @retval 0 acceptable: recfmt 0, qid <= max_qid, hsqsize (0's based) 1..depth - 1 and
 *         hrqsize 1..depth of the queue's kind (admin for qid 0).
 * @retval -EPROTO malformed or out of the limits (@p sts says which field).
 * @retval -EINVAL NULL arguments.
 */
FERRY_API int ferry_nvmf_rdma_cm_req_parse(const void *pdata, uint32_t len,
					   const struct ferry_nvmf_rdma_cm_limits *lim,
					   struct ferry_nvmf_rdma_cm_req *out, uint16_t *sts);

/**
 * @brief Build a connect request's private data (32 bytes) into @p buf (CNTLID 0xffff).
 * @param[out] buf destination.
 * @param[in] cap size of @p buf (>= 32).
 * @param[in] qid the queue ID.
 * @param[in] hrqsize response capsules the host can take (1's based).
 * @param[in] hsqsize the queue's SQSIZE (0's based).
 * @return bytes written (32), 0 if @p buf is NULL or @p cap too small.
 */
FERRY_API size_t ferry_nvmf_rdma_cm_req_build(void *buf, size_t cap, uint16_t qid,
					      uint16_t hrqsize, uint16_t hsqsize);

/**
 * @brief Parse an accept's private data.
 * @param[in] pdata the private data received (NULL only with @p len 0).
 * @param[in] len its length.
 * @param[out] out the fields.
 * @retval 0 success.
 * @retval -EPROTO shorter than 4 bytes, recfmt not 0, or crqsize 0.
 * @retval -EINVAL NULL @p out, or NULL @p pdata with @p len > 0.
 */
FERRY_API int ferry_nvmf_rdma_cm_rep_parse(const void *pdata, uint32_t len,
					   struct ferry_nvmf_rdma_cm_rep *out);

/**
 * @brief Build an accept's private data (32 bytes).
 * @param[out] buf destination.
 * @param[in] cap size of @p buf (>= 32).
 * @param[in] crqsize the controller's receive queue size.
 * @return bytes written (32), 0 if @p buf is NULL or @p cap too small.
 */
FERRY_API size_t ferry_nvmf_rdma_cm_rep_build(void *buf, size_t cap, uint16_t crqsize);

/**
 * @brief Parse a reject's private data.
 * @param[in] pdata the private data received (NULL only with @p len 0).
 * @param[in] len its length.
 * @param[out] sts the reject status (0 on failure).
 * @retval 0 success.
 * @retval -EPROTO shorter than 4 bytes or recfmt not 0.
 * @retval -EINVAL NULL @p sts, or NULL @p pdata with @p len > 0.
 */
FERRY_API int ferry_nvmf_rdma_cm_rej_parse(const void *pdata, uint32_t len, uint16_t *sts);

/**
 * @brief Build a reject's private data (4 bytes).
 * @param[out] buf destination.
 * @param[in] cap size of @p buf (>= 4).
 * @param[in] sts the FERRY_NVMF_RDMA_CM_* status.
 * @return bytes written (4), 0 if @p buf is NULL or @p cap too small.
 */
FERRY_API size_t ferry_nvmf_rdma_cm_rej_build(void *buf, size_t cap, uint16_t sts);

/**
 * @brief Name of a reject status ("invalid HSQSIZE", ...).
 * @param[in] sts the status.
 * @return a static string; "unknown" for a status Ferry does not name.
 */
FERRY_API const char *ferry_nvmf_rdma_cm_sts_str(uint16_t sts);

/* ---- keyed SGLs --------------------------------------------------------------------------- */

/** Keyed data block descriptors one command may carry (in-capsule segment list). */
#define FERRY_NVMF_RDMA_SGL_MAX 16

/** One keyed data block: remote memory. */
struct ferry_nvmf_rdma_kdesc {
	uint64_t addr;      /**< address in the region */
	uint32_t len;       /**< bytes (< 2^24) */
	uint32_t key;       /**< remote key */
	uint8_t invalidate; /**< subtype "invalidate": the host allows remote invalidation */
};

/** What a command's data pointer says (ferry_nvmf_rdma_sgl_parse()). */
enum ferry_nvmf_rdma_sgl_kind {
	FERRY_NVMF_RDMA_SGL_NONE = 0,  /**< no data (a null keyed descriptor, length 0) */
	FERRY_NVMF_RDMA_SGL_ICD = 1,   /**< the data is in the capsule */
	FERRY_NVMF_RDMA_SGL_KEYED = 2, /**< the data is in host memory: @p desc */
};

/** A parsed data pointer. */
struct ferry_nvmf_rdma_sgl {
	uint32_t kind;    /**< enum ferry_nvmf_rdma_sgl_kind */
	uint32_t len;     /**< total data bytes */
	uint32_t icd_off; /**< ICD: offset of the data in the in-capsule data */
	uint32_t ndesc;   /**< KEYED: descriptors */
	struct ferry_nvmf_rdma_kdesc desc[FERRY_NVMF_RDMA_SGL_MAX]; /**< KEYED: in order */
};

/**
 * @brief Parse the data pointer of a command capsule: one keyed data block, an in-capsule
 * data block (subtype offset), or a last-segment descriptor (subtype offset) pointing at a
 * list of keyed data blocks in the in-capsule data.
 * @param[in] sqe the command (PSDT must say SGL).
 * @param[in] icd the capsule's in-capsule data, @p icd_len bytes (may be NULL / 0).
 * @param[in] icd_len bytes of @p icd.
 * @param[in] max_desc descriptors accepted (1..FERRY_NVMF_RDMA_SGL_MAX).
 * @param[in] max_len data bytes accepted (the controller's MDTS).
 * @param[out] out the result.
 * @param[out] status on -EPROTO: the NVMe status to complete the command with
 *             (SCT << 8 | SC: SGL descriptor type invalid, data SGL length invalid, invalid
 *             number of descriptors, SGL offset invalid, invalid field).
 * @retval 0; -EPROTO (see @p status); -EINVAL NULL arguments.
 */
FERRY_API int ferry_nvmf_rdma_sgl_parse(const struct ferry_nvme_sqe *sqe, const void *icd,
					uint32_t icd_len, uint32_t max_desc, uint32_t max_len,
					struct ferry_nvmf_rdma_sgl *out, uint16_t *status);

/**
 * @brief Write the data pointer of @p sqe (and PSDT) for @p n keyed descriptors: 0 → a null
 * keyed descriptor, 1 → that descriptor, more → a last-segment descriptor with the list
 * written at the start of @p icd_area (16 bytes each).
 * @param[in,out] sqe the command whose data pointer is written.
 * @param[out] icd_area where the descriptor list goes (n > 1).
 * @param[in] icd_cap bytes of @p icd_area.
 * @param[in] d the descriptors.
 * @param[in] n number of descriptors (0..FERRY_NVMF_RDMA_SGL_MAX).
 * @param[out] icd_used bytes of @p icd_area used (0 for n <= 1); may be NULL.
 * @retval 0; -ENOBUFS @p icd_area NULL or too small (n > 1); -EINVAL NULL @p sqe (or @p d
 *         with @p n > 0), n > FERRY_NVMF_RDMA_SGL_MAX or a length >= 2^24.
 */
FERRY_API int ferry_nvmf_rdma_sgl_build(struct ferry_nvme_sqe *sqe, void *icd_area,
					uint32_t icd_cap, const struct ferry_nvmf_rdma_kdesc *d,
					uint32_t n, uint32_t *icd_used);

/**
 * @brief Write the data pointer of @p sqe (and PSDT) for @p len bytes of in-capsule data at
 * offset 0. NULL @p sqe: no-op.
 * @param[in,out] sqe the command.
 * @param[in] len bytes of in-capsule data.
 */
FERRY_API void ferry_nvmf_rdma_sgl_build_icd(struct ferry_nvme_sqe *sqe, uint32_t len);

/* ---- registration map -------------------------------------------------------------------- */

struct ferry_rdma_map;

/** Options of ferry_rdma_map_create(). */
struct ferry_rdma_map_opts {
	size_t size;              /**< sizeof(struct ferry_rdma_map_opts) */
	struct ferry_device *dev; /**< required: a device with the NIC class's RDMA part */
	uint32_t max_regions;     /**< cached registrations kept (0 = 1024); held ones are never
				       evicted, so the cache may exceed it while they are */
};

/** One registered segment (ferry_rdma_map_mem()). */
struct ferry_rdma_seg {
	uint64_t addr; /**< address in work requests / keyed SGLs */
	uint32_t len;  /**< bytes */
	uint32_t lkey; /**< local key */
	uint32_t rkey; /**< remote key */
};

/** Counters of a map. */
struct ferry_rdma_map_stats {
	uint64_t regions;       /**< registrations alive now (pinned ones included) */
	uint64_t registrations; /**< regions registered */
	uint64_t hits;          /**< segments found registered */
	uint64_t misses;        /**< segments that needed a registration */
	uint64_t invalidations; /**< regions invalidated (mapping gone, evicted, destroyed) */
	uint64_t refused;       /**< ranges that could not be expressed (-EFAULT / -EXDEV) */
	uint64_t over_limit;    /**< calls that left the cache above max_regions because the
				     registrations past it were held (ferry_rdma_map_release()) */
	uint64_t held_invalidated; /**< held registrations invalidated (mapping gone): their
					I/Os fail on the wire */
	uint64_t cached;        /**< cached registrations now (may exceed max_regions while held) */
	uint64_t held;          /**< registrations with segments handed out and not released */
	uint64_t zombies;       /**< of these, invalidated ones (keys dead, record kept until the
				     last release) */
};

/**
 * @brief Create a map over @p opts->dev.
 * @param[in] opts the options (copied); the device must outlive the map.
 * @param[out] out the map, to be released with ferry_rdma_map_destroy().
 * @retval 0 success.
 * @retval -ENODEV the device has no RDMA part.
 * @retval -EINVAL NULL argument, bad opts->size, or no device.
 * @retval -ENOMEM out of memory.
 * @retval other negative errno of the device's RDMA query.
 */
FERRY_API int ferry_rdma_map_create(const struct ferry_rdma_map_opts *opts,
				    struct ferry_rdma_map **out);

/**
 * @brief Invalidate every registration and free the map (NULL: no-op). Segments still held
 * die with it (no ferry_rdma_map_release() afterwards).
 * @param[in] map the map; invalid after the call.
 */
FERRY_API void ferry_rdma_map_destroy(struct ferry_rdma_map *map);

/**
 * @brief Register local memory [@p addr, @p addr + @p len) for the map's life (buffer pools,
 * staging areas); ranges inside it are then found without a registration.
 * @param[in] map the map.
 * @param[in] addr first byte (local memory; it must stay mapped for the map's life).
 * @param[in] len bytes (> 0).
 * @param[in] access FERRY_HAL_RDMA_ACCESS_* (<ferry/hal/rdma.h>).
 * @retval 0 registered.
 * @retval -EINVAL NULL @p map or @p addr, @p len 0, or a range that wraps.
 * @retval other negative errno of the registration (-ENOMEM, the backend's mr_reg).
 */
FERRY_API int ferry_rdma_map_register(struct ferry_rdma_map *map, void *addr, size_t len,
				      uint32_t access);

/**
 * @brief Express @p mem as registered segments (see the file's preamble). Each segment of a
 * cached registration holds it (no eviction) until ferry_rdma_map_release() of that segment;
 * on failure nothing is held.
 * @param[in] map the map.
 * @param[in] mem the memory, in any domain.
 * @param[in] via the domain to translate @p mem into first when the NIC cannot reach
 *            @p mem's domain itself (the NIC function's view of host memory); NULL: none.
 * @param[in] access FERRY_HAL_RDMA_ACCESS_* the segments need (a read's destination:
 *            REMOTE_WRITE | LOCAL_WRITE; a write's source: REMOTE_READ).
 * @param[out] out segments.
 * @param[in,out] n in: entries of @p out; out: entries used (or needed, with -ENOBUFS).
 * @retval 0; -EFAULT a part is not reachable (reason in ferry_last_error()); -EXDEV no way
 *         to register @p mem's domain; -ENOBUFS @p out too small; -ENOMEM; -EOVERFLOW a
 *         registration held 2^32 - 1 times (segments never released).
 */
FERRY_API int ferry_rdma_map_mem(struct ferry_rdma_map *map, const struct ferry_mem *mem,
				 struct ferry_memdomain *via, uint32_t access,
				 struct ferry_rdma_seg *out, uint32_t *n);

/**
 * @brief Drop the references ferry_rdma_map_mem() took for @p segs (exactly the segments it
 * handed out, any subset of them, in any order; each once).
 *
 * A registration is not evicted while a segment of it is held, so the keys stay valid for the
 * whole I/O (the peer uses them until the completion): release when the I/O is over (its
 * completion, the loss of its connection, its failure before it was sent). The only thing that
 * ends a held registration early is revalidation (the memory's domain unmapped the range): its
 * keys stop working at once, the peer's access fails on the wire (a remote access error, the
 * connection is lost) and the I/O is retried, then mapped again or staged. Its segments are
 * still released as usual. Segments of pinned regions (ferry_rdma_map_register()) are not
 * counted: releasing them is accepted and does nothing.
 * @param[in] map the map.
 * @param[in] segs segments from ferry_rdma_map_mem() of this map.
 * @param[in] n number of @p segs.
 * @retval 0 released (registrations past max_regions that are no longer held are evicted).
 * @retval -ENOENT a segment names no registration of this map (wrong keys or range): nothing
 *         is released.
 * @retval -EINVAL NULL @p map (or @p segs with @p n > 0), or a segment released more often
 *         than it was handed out: nothing is released.
 */
FERRY_API int ferry_rdma_map_release(struct ferry_rdma_map *map, const struct ferry_rdma_seg *segs,
				     uint32_t n);

/**
 * @brief Revalidate the cache if a domain's mapping generation changed (cheap otherwise).
 * @param[in] map the map (NULL: 0).
 * @return registrations invalidated (>= 0).
 */
FERRY_API int ferry_rdma_map_poll(struct ferry_rdma_map *map);

/**
 * @brief The map's counters.
 * @param[in] map the map.
 * @param[out] stats the counters.
 * @retval 0 success.
 * @retval -EINVAL NULL argument.
 */
FERRY_API int ferry_rdma_map_get_stats(struct ferry_rdma_map *map,
				       struct ferry_rdma_map_stats *stats);

FERRY_END_DECLS

#endif /* FERRY_MODULE_RDMA_H */

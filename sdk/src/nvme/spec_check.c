/*
 * Compile-time checks of the NVMe structure layouts in ferry/nvme_spec.h against the
 * specification's byte offsets and sizes: a field that drifts fails the build.
 */
#include <stddef.h>
#include <ferry/nvme_spec.h>

#define AT(type, field, off) _Static_assert(offsetof(struct type, field) == (off), #type "." #field)
#define SIZE(type, n) _Static_assert(sizeof(struct type) == (n), "sizeof " #type)

SIZE(ferry_nvme_sgl_desc, 16);
AT(ferry_nvme_sgl_desc, length, 8);
AT(ferry_nvme_sgl_desc, id, 15);

SIZE(ferry_nvme_sqe, 64);
AT(ferry_nvme_sqe, cid, 2);
AT(ferry_nvme_sqe, nsid, 4);
AT(ferry_nvme_sqe, mptr, 16);
AT(ferry_nvme_sqe, dptr, 24);
AT(ferry_nvme_sqe, cdw10, 40);
AT(ferry_nvme_sqe, cdw15, 60);

SIZE(ferry_nvme_cqe, 16);
AT(ferry_nvme_cqe, sqhd, 8);
AT(ferry_nvme_cqe, cid, 12);
AT(ferry_nvme_cqe, status, 14);

SIZE(ferry_nvme_psd, 32);
SIZE(ferry_nvme_id_ctrlr, 4096);
AT(ferry_nvme_id_ctrlr, sn, 4);
AT(ferry_nvme_id_ctrlr, mn, 24);
AT(ferry_nvme_id_ctrlr, fr, 64);
AT(ferry_nvme_id_ctrlr, mdts, 77);
AT(ferry_nvme_id_ctrlr, cntlid, 78);
AT(ferry_nvme_id_ctrlr, ver, 80);
AT(ferry_nvme_id_ctrlr, oaes, 92);
AT(ferry_nvme_id_ctrlr, cntrltype, 111);
AT(ferry_nvme_id_ctrlr, oacs, 256);
AT(ferry_nvme_id_ctrlr, acl, 258);
AT(ferry_nvme_id_ctrlr, aerl, 259);
AT(ferry_nvme_id_ctrlr, frmw, 260);
AT(ferry_nvme_id_ctrlr, lpa, 261);
AT(ferry_nvme_id_ctrlr, elpe, 262);
AT(ferry_nvme_id_ctrlr, wctemp, 266);
AT(ferry_nvme_id_ctrlr, kas, 320);
AT(ferry_nvme_id_ctrlr, sqes, 512);
AT(ferry_nvme_id_ctrlr, nn, 516);
AT(ferry_nvme_id_ctrlr, oncs, 520);
AT(ferry_nvme_id_ctrlr, vwc, 525);
AT(ferry_nvme_id_ctrlr, sgls, 536);
AT(ferry_nvme_id_ctrlr, subnqn, 768);
AT(ferry_nvme_id_ctrlr, maxcmd, 514);
AT(ferry_nvme_id_ctrlr, nvmf, 1792);
_Static_assert(FERRY_NVME_ID_NVMF_IORCSZ == 1796 - 1792 && FERRY_NVME_ID_NVMF_ICDOFF == 1800 - 1792,
	       "Identify Controller IORCSZ, ICDOFF");
_Static_assert(FERRY_NVME_ID_NVMF_FCATT == 1802 - 1792 && FERRY_NVME_ID_NVMF_MSDBD == 1803 - 1792 &&
		       FERRY_NVME_ID_NVMF_OFCS == 1804 - 1792,
	       "Identify Controller FCATT, MSDBD, OFCS");
AT(ferry_nvme_id_ctrlr, psd, 2048);
AT(ferry_nvme_id_ctrlr, vs, 3072);

SIZE(ferry_nvme_id_ns, 4096);
AT(ferry_nvme_id_ns, nlbaf, 25);
AT(ferry_nvme_id_ns, flbas, 26);
AT(ferry_nvme_id_ns, dlfeat, 33);
AT(ferry_nvme_id_ns, nvmcap, 48);
AT(ferry_nvme_id_ns, nguid, 104);
AT(ferry_nvme_id_ns, eui64, 120);
AT(ferry_nvme_id_ns, lbaf, 128);

SIZE(ferry_nvme_error_log, 64);
AT(ferry_nvme_error_log, status, 12);
AT(ferry_nvme_error_log, lba, 16);
AT(ferry_nvme_error_log, nsid, 24);
AT(ferry_nvme_error_log, cs, 32);

SIZE(ferry_nvme_smart_log, 512);
AT(ferry_nvme_smart_log, data_units_read, 32);
AT(ferry_nvme_smart_log, num_err_log_entries, 176);

SIZE(ferry_nvme_fw_slot_log, 512);
AT(ferry_nvme_fw_slot_log, frs, 8);
AT(ferry_nvme_fw_slot_log, rsvd64, 64);

SIZE(ferry_nvme_changed_ns_list, 4096);
SIZE(ferry_nvme_dsm_range, 16);
SIZE(ferry_nvme_ns_id_desc, 4);

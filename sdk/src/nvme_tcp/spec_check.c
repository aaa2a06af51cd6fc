/*
 * Layout checks of the NVMe/TCP and NVMe-oF wire structures (ferry/nvme_tcp_spec.h,
 * ferry/nvmf_spec.h): a field that drifts fails the build.
 */
#include <stddef.h>
#include <ferry/nvme_tcp_spec.h>
#include <ferry/nvmf_spec.h>

_Static_assert(sizeof(struct ferry_nvme_tcp_ch) == 8, "common header");
_Static_assert(sizeof(struct ferry_nvme_tcp_icreq) == FERRY_NVME_TCP_HLEN_IC, "ICReq");
_Static_assert(sizeof(struct ferry_nvme_tcp_icresp) == FERRY_NVME_TCP_HLEN_IC, "ICResp");
_Static_assert(offsetof(struct ferry_nvme_tcp_icresp, maxh2cdata) == 12, "ICResp maxh2cdata");
_Static_assert(sizeof(struct ferry_nvme_tcp_term) == FERRY_NVME_TCP_HLEN_TERM, "TermReq");
_Static_assert(offsetof(struct ferry_nvme_tcp_term, fei) == 10, "TermReq fei");
_Static_assert(sizeof(struct ferry_nvme_tcp_cmd) == FERRY_NVME_TCP_HLEN_CMD, "CapsuleCmd");
_Static_assert(sizeof(struct ferry_nvme_tcp_resp) == FERRY_NVME_TCP_HLEN_RESP, "CapsuleResp");
_Static_assert(sizeof(struct ferry_nvme_tcp_data) == FERRY_NVME_TCP_HLEN_DATA, "H2C/C2HData");
_Static_assert(offsetof(struct ferry_nvme_tcp_data, datal) == 16, "data datal");
_Static_assert(sizeof(struct ferry_nvme_tcp_r2t) == FERRY_NVME_TCP_HLEN_R2T, "R2T");
_Static_assert(sizeof(struct ferry_nvmf_cmd) == 64, "fabrics command");
_Static_assert(sizeof(struct ferry_nvmf_connect_cmd) == 64, "Connect");
_Static_assert(offsetof(struct ferry_nvmf_connect_cmd, recfmt) == 40, "Connect recfmt");
_Static_assert(offsetof(struct ferry_nvmf_connect_cmd, kato) == 48, "Connect kato");
_Static_assert(sizeof(struct ferry_nvmf_connect_data) == 1024, "Connect data");
_Static_assert(offsetof(struct ferry_nvmf_connect_data, subnqn) == 256, "Connect subnqn");
_Static_assert(offsetof(struct ferry_nvmf_connect_data, hostnqn) == 512, "Connect hostnqn");
_Static_assert(sizeof(struct ferry_nvmf_prop_set_cmd) == 64, "Property Set");
_Static_assert(offsetof(struct ferry_nvmf_prop_set_cmd, attrib) == 40, "Property Set attrib");
_Static_assert(offsetof(struct ferry_nvmf_prop_set_cmd, offset) == 44, "Property Set offset");
_Static_assert(offsetof(struct ferry_nvmf_prop_set_cmd, value) == 48, "Property Set value");
_Static_assert(sizeof(struct ferry_nvmf_prop_get_cmd) == 64, "Property Get");
_Static_assert(sizeof(struct ferry_nvmf_disc_entry) == 1024, "discovery entry");
_Static_assert(offsetof(struct ferry_nvmf_disc_entry, trsvcid) == 32, "disc trsvcid");
_Static_assert(offsetof(struct ferry_nvmf_disc_entry, subnqn) == 256, "disc subnqn");
_Static_assert(offsetof(struct ferry_nvmf_disc_entry, traddr) == 512, "disc traddr");
_Static_assert(sizeof(struct ferry_nvmf_disc_log) == 1024, "discovery log header");

/*
 * Get/Set Features whose value depends on a selector in CDW11. Temperature Threshold (04h):
 * one threshold per TMPSEL (composite; no temperature sensor is implemented) and THSEL
 * (over/under), with the specification's defaults (over = WCTEMP, under = 0), Fh (all
 * sensors) for Set only, and Invalid Field in Command for the selectors that do not exist.
 */
#include "test_nvme_host.h"
#include <ferry/module/nvme_ctrlr.h>

static uint16_t set_feat(struct host *h, uint8_t fid, uint32_t v)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_SET_FEATURES, 0);
	s.cdw10 = fid;
	s.cdw11 = v;
	return h_cmd(h, 0, &s, NULL);
}

static uint16_t get_feat(struct host *h, uint8_t fid, uint32_t sel, uint32_t cdw11, uint32_t *dw0)
{
	struct ferry_nvme_sqe s = h_sqe(FERRY_NVME_ADM_GET_FEATURES, 0);
	struct ferry_nvme_cqe e;
	s.cdw10 = fid | (sel << 8);
	s.cdw11 = cdw11;
	uint16_t st = h_cmd(h, 0, &s, &e);
	*dw0 = e.dw0;
	return st;
}

#define TT FERRY_NVME_FEAT_TEMP_THRESHOLD
#define TSEL(tmpsel, thsel) (((uint32_t)(tmpsel) << 16) | ((uint32_t)(thsel) << 20))

static uint16_t tt_get(struct host *h, uint32_t sel, uint32_t tmpsel, uint32_t thsel)
{
	uint32_t v = 0;
	cr_assert_eq(get_feat(h, TT, sel, TSEL(tmpsel, thsel), &v), 0);
	cr_assert_eq(v >> 16, TSEL(tmpsel, thsel) >> 16, "selectors echoed in DW0");
	return (uint16_t)v;
}

Test(nvme_features, temperature_threshold_per_selector)
{
	struct host *h = h_create(NULL);
	h_up(h, 0);
	/* Defaults: over = WCTEMP (343 K), under = 0. */
	cr_assert_eq(tt_get(h, 0, 0, 0), 0x157);
	cr_assert_eq(tt_get(h, 0, 0, 1), 0);
	cr_assert_eq(tt_get(h, 1, 0, 0), 0x157);
	cr_assert_eq(tt_get(h, 1, 0, 1), 0);
	/* Over and under are kept apart. */
	cr_assert_eq(set_feat(h, TT, 350 | TSEL(0, 0)), 0);
	cr_assert_eq(set_feat(h, TT, 260 | TSEL(0, 1)), 0);
	cr_assert_eq(tt_get(h, 0, 0, 0), 350);
	cr_assert_eq(tt_get(h, 0, 0, 1), 260);
	cr_assert_eq(tt_get(h, 1, 0, 0), 0x157, "default unchanged");
	cr_assert_eq(tt_get(h, 2, 0, 1), 0, "saved = default");
	/* TMPSEL Fh sets every implemented one (the composite). */
	cr_assert_eq(set_feat(h, TT, 345 | TSEL(0xf, 0)), 0);
	cr_assert_eq(tt_get(h, 0, 0, 0), 345);
	cr_assert_eq(tt_get(h, 0, 0, 1), 260, "under untouched by an over write");
	/* Selectors that do not exist: sensors 1..8 (not implemented), 9h..Eh (reserved), Fh on
	 * Get, THSEL 10b/11b. Nothing changes. */
	uint32_t v;
	for (uint32_t t = 1; t <= 0xe; t++) {
		cr_assert_eq(set_feat(h, TT, 300 | TSEL(t, 0)), ST(GENERIC, INVALID_FIELD), "TMPSEL %u", t);
		cr_assert_eq(get_feat(h, TT, 0, TSEL(t, 0), &v), ST(GENERIC, INVALID_FIELD));
	}
	cr_assert_eq(get_feat(h, TT, 0, TSEL(0xf, 0), &v), ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(set_feat(h, TT, 300 | TSEL(0, 2)), ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(set_feat(h, TT, 300 | TSEL(0, 3)), ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(get_feat(h, TT, 0, TSEL(0, 2), &v), ST(GENERIC, INVALID_FIELD));
	cr_assert_eq(tt_get(h, 0, 0, 0), 345);
	cr_assert_eq(tt_get(h, 0, 0, 1), 260);
	/* A reset restores the defaults. */
	h_disable(h);
	h_up(h, 0);
	cr_assert_eq(tt_get(h, 0, 0, 0), 0x157);
	cr_assert_eq(tt_get(h, 0, 0, 1), 0);
	h_destroy(h);
}

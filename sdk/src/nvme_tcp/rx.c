/*
 * The NVMe/TCP receive state machine (ferry/module/nvme_tcp.h): a resumable parser fed the
 * byte stream in any split, through rx_next()+rx_advance() (zero copy) or rx_feed() (copy).
 *
 * A PDU is received as a sequence of parts, each with its own buffer:
 *   CH (8 bytes, rx->hdr) -> HDR (rest of the header + header digest, rx->hdr)
 *   -> [HEADER event, WAIT_DEST until rx_set_dest()] -> PAD (rx->scratch, ignored)
 *   -> DATA (the caller's destination, or rx->scratch when discarded) -> DDGST (rx->ddgst)
 *   -> DONE; a TermReq: CH -> HDR -> TERM (its data, rx->scratch) -> DONE.
 * The common header is validated as soon as its 8 bytes are in: it decides how much more is
 * read, so a bad HLEN or PLEN never makes the machine read (or wait for) bytes it should not.
 * Nothing is sized from PLEN: the header lives in a fixed buffer, TermReq data is bounded by
 * the spec's PLEN 152, and PDU data goes only into caller buffers checked against data_len,
 * which the limits of the parameters bound.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <ferry/crc.h>
#include "nvme_tcp_internal.h"

_Static_assert(offsetof(struct ferry_nvme_tcp_rx, hdr) % 8 == 0, "rx header buffer alignment");
_Static_assert(sizeof(((struct ferry_nvme_tcp_rx *)0)->scratch) >= 128 - 24,
	       "scratch holds the longest padding");

enum {
	RX_CH,
	RX_HDR,
	RX_WAIT_DEST,
	RX_PAD,
	RX_DATA,
	RX_DDGST,
	RX_TERM,
	RX_ERROR,
};

#define RX_CH_LEN 8u
#define DLEN FERRY_NVME_TCP_DIGEST_LEN

static int is_term(uint8_t t)
{
	return t == FERRY_NVME_TCP_H2C_TERM || t == FERRY_NVME_TCP_C2H_TERM;
}

static int is_ic(uint8_t t)
{
	return t == FERRY_NVME_TCP_ICREQ || t == FERRY_NVME_TCP_ICRESP;
}

static void ev_clear(struct ferry_nvme_tcp_rx_event *ev)
{
	memset(ev, 0, sizeof(*ev));
}

static void part(struct ferry_nvme_tcp_rx *rx, uint32_t state, uint32_t need)
{
	rx->state = state;
	rx->have = 0;
	rx->need = need;
}

static void rx_error(struct ferry_nvme_tcp_rx *rx, uint16_t fes, uint32_t fei,
		     struct ferry_nvme_tcp_rx_event *ev)
{
	rx->fes = fes;
	rx->fei = fei;
	rx->state = RX_ERROR;
	rx->offered = 0;
	if (ev) {
		ev_clear(ev);
		ev->type = FERRY_NVME_TCP_RX_ERROR;
		ev->fes = fes;
		ev->fei = fei;
	}
}

int ferry_nvme_tcp_rx_init(struct ferry_nvme_tcp_rx *rx, const struct ferry_nvme_tcp_params *p)
{
	if (!rx || !p)
		return -EINVAL;
	if (p->role != FERRY_NVME_TCP_ROLE_CONTROLLER && p->role != FERRY_NVME_TCP_ROLE_HOST)
		return -EINVAL;
	memset(rx, 0, sizeof(*rx));
	rx->p = *p;
	/* Until the IC exchange no digest and no padding exist on the wire. */
	rx->p.hdgst = 0;
	rx->p.ddgst = 0;
	rx->p.hpda = 0;
	rx->p.cpda = 0;
	part(rx, RX_CH, RX_CH_LEN);
	return 0;
}

int ferry_nvme_tcp_rx_set_params(struct ferry_nvme_tcp_rx *rx,
				 const struct ferry_nvme_tcp_params *p)
{
	if (!rx || !p || p->role != rx->p.role || p->hpda > FERRY_NVME_TCP_PDA_MAX ||
	    p->cpda > FERRY_NVME_TCP_PDA_MAX)
		return -EINVAL;
	rx->p = *p;
	rx->p.hdgst = !!p->hdgst;
	rx->p.ddgst = !!p->ddgst;
	return 0;
}

/*
 * The common header: everything that decides how many bytes follow. Checked in the order of
 * the fields (type, flags, HLEN, PDO, PLEN) so that FEI names the first bad one.
 */
static int check_ch(struct ferry_nvme_tcp_rx *rx, struct ferry_nvme_tcp_rx_event *ev)
{
	const uint8_t *h = rx->hdr;
	uint8_t type = h[PDU_OFF_TYPE], flags = h[PDU_OFF_FLAGS];
	uint32_t hlen = h[PDU_OFF_HLEN], pdo = h[PDU_OFF_PDO], plen = pdu_get32(h + PDU_OFF_PLEN);
	uint32_t hd = 0, dd = 0, want_pdo;
	const uint8_t dgst_flags = FERRY_NVME_TCP_F_HDGST | FERRY_NVME_TCP_F_DDGST;

	if (!pdu_receivable(rx->p.role, type))
		goto bad_type;
	/*
	 * The IC PDU comes first and once. A TermReq may come at any time: a controller that
	 * refuses an ICReq answers with a C2HTermReq instead of an ICResp.
	 */
	if ((!rx->ic_done && !is_ic(type) && !is_term(type)) || (rx->ic_done && is_ic(type))) {
		rx_error(rx, FERRY_NVME_TCP_FES_PDU_SEQUENCE, 0, ev);
		return -1;
	}
	rx->data_len = 0;
	rx->pad_len = 0;
	rx->dd = 0;
	if (is_ic(type) || is_term(type)) {
		/* No digest, no padding on these (the digests are not negotiated yet / anymore). */
		if (flags & dgst_flags)
			goto bad_flags;
		if (hlen != pdu_hlen(type))
			goto bad_hlen;
		if (is_ic(type)) {
			if (pdo != 0)
				goto bad_pdo;
			if (plen != FERRY_NVME_TCP_HLEN_IC)
				goto bad_plen;
		} else {
			/* PDO is not checked on a TermReq: its data always follows the header, and
			 * the connection is being closed anyway. */
			if (plen < FERRY_NVME_TCP_HLEN_TERM || plen > FERRY_NVME_TCP_TERM_MAX_PLEN)
				goto bad_plen;
			rx->data_len = plen - FERRY_NVME_TCP_HLEN_TERM;
		}
		rx->hlen = hlen;
		return 0;
	}

	if (!!(flags & FERRY_NVME_TCP_F_HDGST) != rx->p.hdgst)
		goto bad_flags;
	hd = rx->p.hdgst ? DLEN : 0;
	switch (type) {
	case FERRY_NVME_TCP_CAPSULE_CMD:
		if (pdo == 0) { /* no in-capsule data */
			if (flags & FERRY_NVME_TCP_F_DDGST)
				goto bad_flags;
			if (hlen != pdu_hlen(type))
				goto bad_hlen;
			if (plen != hlen + hd)
				goto bad_plen;
			break;
		}
		if (!!(flags & FERRY_NVME_TCP_F_DDGST) != rx->p.ddgst)
			goto bad_flags;
		dd = rx->p.ddgst ? DLEN : 0;
		if (hlen != pdu_hlen(type))
			goto bad_hlen;
		want_pdo = ferry_nvme_tcp_pdo(&rx->p, type);
		if (pdo != want_pdo)
			goto bad_pdo;
		if (plen <= pdo + dd)
			goto bad_plen;
		rx->data_len = plen - pdo - dd;
		/* In-capsule data beyond what the controller accepts (none when max_icd is 0):
		 * data transfer limit exceeded, as Linux nvmet and SPDK report it. */
		if (rx->data_len > rx->p.max_icd) {
			rx_error(rx, FERRY_NVME_TCP_FES_DATA_LIMIT, PDU_OFF_PLEN, ev);
			return -1;
		}
		break;
	case FERRY_NVME_TCP_CAPSULE_RESP:
	case FERRY_NVME_TCP_R2T:
		if (flags & FERRY_NVME_TCP_F_DDGST)
			goto bad_flags;
		if (hlen != pdu_hlen(type))
			goto bad_hlen;
		if (pdo != 0)
			goto bad_pdo;
		if (plen != hlen + hd)
			goto bad_plen;
		break;
	case FERRY_NVME_TCP_H2C_DATA:
	case FERRY_NVME_TCP_C2H_DATA:
		if (!!(flags & FERRY_NVME_TCP_F_DDGST) != rx->p.ddgst)
			goto bad_flags;
		/* SUCCESS means "no CapsuleResp follows": only on the last C2HData. */
		if ((flags & FERRY_NVME_TCP_F_SUCCESS) &&
		    (type == FERRY_NVME_TCP_H2C_DATA || !(flags & FERRY_NVME_TCP_F_LAST_PDU)))
			goto bad_flags;
		dd = rx->p.ddgst ? DLEN : 0;
		if (hlen != pdu_hlen(type))
			goto bad_hlen;
		want_pdo = ferry_nvme_tcp_pdo(&rx->p, type);
		if (pdo != want_pdo)
			goto bad_pdo;
		if (plen < pdo + dd)
			goto bad_plen;
		/* DATAL is compared with this once the header is in. */
		rx->data_len = plen - pdo - dd;
		break;
	default:
		goto bad_type;
	}
	rx->hlen = hlen + hd;
	rx->dd = (uint8_t)(dd != 0);
	if (pdo)
		rx->pad_len = pdo - hlen - hd;
	return 0;

bad_type:
	rx_error(rx, FERRY_NVME_TCP_FES_INVALID_HEADER, PDU_OFF_TYPE, ev);
	return -1;
bad_flags:
	rx_error(rx, FERRY_NVME_TCP_FES_INVALID_HEADER, PDU_OFF_FLAGS, ev);
	return -1;
bad_hlen:
	rx_error(rx, FERRY_NVME_TCP_FES_INVALID_HEADER, PDU_OFF_HLEN, ev);
	return -1;
bad_pdo:
	rx_error(rx, FERRY_NVME_TCP_FES_INVALID_HEADER, PDU_OFF_PDO, ev);
	return -1;
bad_plen:
	rx_error(rx, FERRY_NVME_TCP_FES_INVALID_HEADER, PDU_OFF_PLEN, ev);
	return -1;
}

/* The whole header is in: its digest first (a corrupted header proves nothing), then the
 * fields of each type. */
static int check_hdr(struct ferry_nvme_tcp_rx *rx, struct ferry_nvme_tcp_rx_event *ev)
{
	const uint8_t *h = rx->hdr;
	uint8_t type = h[PDU_OFF_TYPE];
	uint32_t hlen = h[PDU_OFF_HLEN], datal, limit;
	uint16_t fes = FERRY_NVME_TCP_FES_UNSUPPORTED;
	uint32_t fei;

	if (rx->hlen > hlen && ferry_crc32c(0, h, hlen) != pdu_get32(h + hlen)) {
		rx->stats.hdgst_errors++;
		rx_error(rx, FERRY_NVME_TCP_FES_HDGST, 0, ev);
		return -1;
	}
	switch (type) {
	case FERRY_NVME_TCP_ICREQ:
	case FERRY_NVME_TCP_ICRESP:
		if (pdu_get16(h + PDU_OFF_PFV) != FERRY_NVME_TCP_PFV_1_0) {
			fei = PDU_OFF_PFV;
			goto fail;
		}
		if (h[PDU_OFF_PDA] > FERRY_NVME_TCP_PDA_MAX) {
			fei = PDU_OFF_PDA;
			goto fail;
		}
		if (h[PDU_OFF_DGST] & ~(FERRY_NVME_TCP_DGST_HDGST | FERRY_NVME_TCP_DGST_DDGST)) {
			fei = PDU_OFF_DGST;
			goto fail;
		}
		if (type == FERRY_NVME_TCP_ICRESP) {
			limit = pdu_get32(h + PDU_OFF_MAXH2CDATA);
			if (limit < PDU_MIN_MAXH2CDATA || limit % 4) {
				fei = PDU_OFF_MAXH2CDATA;
				goto fail;
			}
		}
		break;
	case FERRY_NVME_TCP_H2C_DATA:
	case FERRY_NVME_TCP_C2H_DATA:
		fes = FERRY_NVME_TCP_FES_INVALID_HEADER;
		datal = pdu_get32(h + PDU_OFF_DATAL);
		if (datal == 0) {
			fei = PDU_OFF_DATAL;
			goto fail;
		}
		if (datal != rx->data_len) {
			fei = PDU_OFF_PLEN;
			goto fail;
		}
		limit = type == FERRY_NVME_TCP_H2C_DATA ? rx->p.maxh2cdata : rx->p.max_c2hdata;
		if (limit && datal > limit) {
			fes = FERRY_NVME_TCP_FES_DATA_LIMIT;
			fei = PDU_OFF_DATAL;
			goto fail;
		}
		break;
	case FERRY_NVME_TCP_R2T:
		if (pdu_get32(h + PDU_OFF_DATAL) == 0) {
			fes = FERRY_NVME_TCP_FES_INVALID_HEADER;
			fei = PDU_OFF_DATAL;
			goto fail;
		}
		break;
	default:
		break;
	}
	return 0;
fail:
	rx_error(rx, fes, fei, ev);
	return -1;
}

/* CRC32C of the data_len bytes at the start of the destination (the last segment may be
 * longer than the data). */
static uint32_t dest_crc(const struct ferry_nvme_tcp_rx *rx)
{
	uint32_t crc = 0, i;
	size_t left = rx->data_len, k;

	for (i = 0; i < rx->dest_cnt && left; i++) {
		k = rx->dest[i].iov_len < left ? rx->dest[i].iov_len : left;
		crc = ferry_crc32c(crc, rx->dest[i].iov_base, k);
		left -= k;
	}
	return crc;
}

static void pdu_done(struct ferry_nvme_tcp_rx *rx, struct ferry_nvme_tcp_rx_event *ev)
{
	uint8_t type = rx->hdr[PDU_OFF_TYPE];
	uint32_t crc;

	ev_clear(ev);
	ev->type = FERRY_NVME_TCP_RX_DONE;
	ev->hdr = (const struct ferry_nvme_tcp_ch *)(const void *)rx->hdr;
	ev->data_len = rx->data_len;
	if (is_term(type)) {
		ev->term_data = rx->scratch;
	} else if (rx->data_len) {
		ev->all_placed = !!(rx->span_flags & FERRY_NVME_TCP_RX_F_PLACED);
		ev->all_crc_ok = !!(rx->span_flags & rx->dg_flags & FERRY_NVME_TCP_RX_F_CRC_OK);
		if (!rx->dd)
			ev->all_crc_ok = !!(rx->span_flags & FERRY_NVME_TCP_RX_F_CRC_OK);
		else
			ev->ddgst = pdu_get32(rx->ddgst);
		/* Software checks the digest when a data span or the digest itself came without
		 * the NIC's verdict, or when asked to check the NIC. */
		if (rx->dd && (rx->sw_span || !ev->all_crc_ok ||
			       (rx->dest_flags & FERRY_NVME_TCP_RX_DEST_F_VERIFY))) {
			crc = rx->crc;
			if (rx->apart_placed) {
				/* Some bytes are where this CPU does not read them. */
				ev->crc_deferred = 1;
				goto counted;
			}
			if (rx->crc_done != rx->data_len) {
				/*
				 * CRC_OK and software spans mixed: the running CRC has holes.
				 * Every byte is in the destination now (a discarded PDU never
				 * gets here: its CRC is always computed as it passes), so the
				 * whole digest is computed from there.
				 */
				crc = dest_crc(rx);
				rx->stats.crc_bytes += rx->data_len;
			}
			if (crc != pdu_get32(rx->ddgst)) {
				ev->ddgst_error = 1;
				ev->nic_crc_false = ev->all_crc_ok;
				rx->stats.ddgst_errors++;
			}
		}
counted:
		rx->stats.data_bytes += rx->data_len;
	}
	if (is_ic(type))
		rx->ic_done = 1;
	rx->stats.pdus++;
	part(rx, RX_CH, RX_CH_LEN);
	rx->hdr_got = 0;
}

/* Move to the part after the data, skipping empty parts. */
static void after_data(struct ferry_nvme_tcp_rx *rx, struct ferry_nvme_tcp_rx_event *ev)
{
	if (rx->dd)
		part(rx, RX_DDGST, DLEN);
	else
		pdu_done(rx, ev);
}

/* The current part is complete: validate, move on; may set an event. */
static void part_done(struct ferry_nvme_tcp_rx *rx, struct ferry_nvme_tcp_rx_event *ev)
{
	uint8_t type;

	switch (rx->state) {
	case RX_CH:
		rx->hdr_got = RX_CH_LEN;
		if (check_ch(rx, ev))
			return;
		part(rx, RX_HDR, rx->hlen - RX_CH_LEN);
		return;
	case RX_HDR:
		rx->hdr_got = rx->hdr[PDU_OFF_HLEN];
		if (check_hdr(rx, ev))
			return;
		type = rx->hdr[PDU_OFF_TYPE];
		if (is_term(type)) {
			if (rx->data_len)
				part(rx, RX_TERM, rx->data_len);
			else
				pdu_done(rx, ev);
			return;
		}
		if (rx->data_len == 0) {
			pdu_done(rx, ev);
			return;
		}
		rx->state = RX_WAIT_DEST;
		rx->have = rx->need = 0;
		ev_clear(ev);
		ev->type = FERRY_NVME_TCP_RX_HEADER;
		ev->hdr = (const struct ferry_nvme_tcp_ch *)(const void *)rx->hdr;
		ev->data_len = rx->data_len;
		return;
	case RX_PAD:
		part(rx, RX_DATA, rx->data_len);
		return;
	case RX_DATA:
		after_data(rx, ev);
		return;
	case RX_DDGST:
	case RX_TERM:
		pdu_done(rx, ev);
		return;
	default:
		return;
	}
}

int ferry_nvme_tcp_rx_set_dest(struct ferry_nvme_tcp_rx *rx, const struct iovec *iov,
			       uint32_t iovcnt)
{
	return ferry_nvme_tcp_rx_set_dest_ex(rx, iov, iovcnt, 0);
}

int ferry_nvme_tcp_rx_set_dest_ex(struct ferry_nvme_tcp_rx *rx, const struct iovec *iov,
				  uint32_t iovcnt, uint32_t dflags)
{
	size_t total = 0;
	uint32_t i;

	if (!rx || rx->state != RX_WAIT_DEST || (!iov && iovcnt))
		return -EINVAL;
	if (dflags & ~(FERRY_NVME_TCP_RX_DEST_F_APART | FERRY_NVME_TCP_RX_DEST_F_VERIFY))
		return -EINVAL;
	if ((dflags & FERRY_NVME_TCP_RX_DEST_F_APART) && !iovcnt)
		return -EINVAL;
	for (i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EINVAL;
		total += iov[i].iov_len;
		if (total >= rx->data_len)
			break;
	}
	if (iovcnt && total < rx->data_len)
		return -EINVAL;
	rx->discard = iovcnt == 0;
	rx->dest = iovcnt ? iov : NULL;
	/* Only the segments that hold data_len bytes matter (the CRC recompute walks them). */
	rx->dest_cnt = iovcnt ? i + 1 : 0;
	if (rx->dest_cnt > iovcnt)
		rx->dest_cnt = iovcnt;
	rx->dest_idx = 0;
	rx->dest_off = 0;
	rx->data_done = 0;
	rx->crc = 0;
	rx->crc_done = 0;
	rx->span_flags = ~0u;
	rx->dg_flags = ~0u;
	rx->sw_span = 0;
	rx->apart_placed = 0;
	rx->dest_flags = dflags;
	if (rx->pad_len)
		part(rx, RX_PAD, rx->pad_len);
	else
		part(rx, RX_DATA, rx->data_len);
	return 0;
}

/* Data iovecs from the current destination position, up to @p max; returns the count. */
static uint32_t data_iov(const struct ferry_nvme_tcp_rx *rx, struct iovec *iov, uint32_t max,
			 size_t *bytes)
{
	uint32_t n = 0, idx = rx->dest_idx;
	size_t off = rx->dest_off, left = rx->data_len - rx->data_done, k;

	*bytes = 0;
	if (rx->discard) {
		k = left < sizeof(rx->scratch) ? left : sizeof(rx->scratch);
		iov[0].iov_base = (void *)rx->scratch;
		iov[0].iov_len = k;
		*bytes = k;
		return 1;
	}
	while (left && n < max && idx < rx->dest_cnt) {
		k = rx->dest[idx].iov_len - off;
		if (k > left)
			k = left;
		if (k) {
			iov[n].iov_base = (uint8_t *)rx->dest[idx].iov_base + off;
			iov[n].iov_len = k;
			n++;
			left -= k;
			*bytes += k;
		}
		idx++;
		off = 0;
	}
	return n;
}

uint32_t ferry_nvme_tcp_rx_next(struct ferry_nvme_tcp_rx *rx, struct iovec *iov, uint32_t max)
{
	uint32_t n = 0;
	size_t bytes = 0, b;

	if (!rx || !iov || max == 0)
		return 0;
	switch (rx->state) {
	case RX_CH:
		iov[0].iov_base = rx->hdr + rx->have;
		iov[0].iov_len = rx->need - rx->have;
		n = 1;
		break;
	case RX_HDR:
		iov[0].iov_base = rx->hdr + RX_CH_LEN + rx->have;
		iov[0].iov_len = rx->need - rx->have;
		n = 1;
		break;
	case RX_TERM:
		iov[0].iov_base = rx->scratch + rx->have;
		iov[0].iov_len = rx->need - rx->have;
		n = 1;
		break;
	case RX_DDGST:
		iov[0].iov_base = rx->ddgst + rx->have;
		iov[0].iov_len = rx->need - rx->have;
		n = 1;
		break;
	case RX_PAD:
	case RX_DATA:
		/* Padding, data and data digest come with no event in between: offered together
		 * so that one readv can take them all. */
		if (rx->state == RX_PAD) {
			iov[0].iov_base = rx->scratch + rx->have;
			iov[0].iov_len = rx->need - rx->have;
			n = 1;
			bytes = iov[0].iov_len;
			if (n == max)
				break;
		}
		n += data_iov(rx, iov + n, max - n, &b);
		bytes += b;
		if (b == rx->data_len - rx->data_done && rx->dd && n < max) {
			iov[n].iov_base = rx->ddgst;
			iov[n].iov_len = DLEN;
			n++;
			bytes += DLEN;
		}
		rx->offered = bytes;
		return n;
	default:
		rx->offered = 0;
		return 0;
	}
	rx->offered = iov[0].iov_len;
	return n;
}

/*
 * Account @p k data bytes (k <= what the DATA part still needs). With @p src (feed) they are
 * copied into the destination from there; without, they are already in the destination (or,
 * when discarded, at @p disc in the scratch buffer). The running digest covers software spans
 * only while no CRC_OK span has come: once spans mix, pdu_done() recomputes it whole.
 */
static void data_account(struct ferry_nvme_tcp_rx *rx, size_t k, uint32_t flags, const uint8_t *src,
			 const uint8_t *disc)
{
	int verify = !!(rx->dest_flags & FERRY_NVME_TCP_RX_DEST_F_VERIFY);
	int sw = rx->dd && (!(flags & FERRY_NVME_TCP_RX_F_CRC_OK) || rx->discard || verify);
	int apart = (rx->dest_flags & FERRY_NVME_TCP_RX_DEST_F_APART) &&
		    (flags & FERRY_NVME_TCP_RX_F_PLACED);
	int run = sw && !apart && rx->crc_done == rx->data_done;
	size_t left = k, c;

	rx->span_flags &= flags;
	if (apart)
		rx->apart_placed = 1;
	if (flags & FERRY_NVME_TCP_RX_F_PLACED)
		rx->stats.placed_bytes += k;
	if (rx->dd && !(flags & FERRY_NVME_TCP_RX_F_CRC_OK))
		rx->sw_span = 1;
	if (rx->discard) {
		const uint8_t *p = src ? src : disc;

		if (run) {
			rx->crc = ferry_crc32c(rx->crc, p, k);
			rx->stats.crc_bytes += k;
		}
	} else {
		while (left) {
			const struct iovec *d = &rx->dest[rx->dest_idx];
			uint8_t *to = (uint8_t *)d->iov_base + rx->dest_off;

			c = d->iov_len - rx->dest_off;
			if (c > left)
				c = left;
			if (src) {
				memcpy(to, src, c);
				src += c;
				rx->stats.copied_bytes += c;
			}
			if (run) {
				rx->crc = ferry_crc32c(rx->crc, to, c);
				rx->stats.crc_bytes += c;
			}
			left -= c;
			rx->dest_off += c;
			if (rx->dest_off == d->iov_len) {
				rx->dest_idx++;
				rx->dest_off = 0;
			}
		}
	}
	if (run)
		rx->crc_done += (uint32_t)k;
	rx->data_done += (uint32_t)k;
	/* A discarded PDU is sent back through the software digest entirely (above), so a
	 * CRC_OK span there never leaves a hole; sw_span then tells pdu_done() to compare. */
	if (rx->discard && rx->dd)
		rx->sw_span = 1;
}

/* Take up to @p n stream bytes (from @p src, or already in place); stops at an event. */
static size_t consume(struct ferry_nvme_tcp_rx *rx, size_t n, uint32_t flags, const uint8_t *src,
		      struct ferry_nvme_tcp_rx_event *ev)
{
	size_t used = 0, k, disc = 0;
	uint8_t *to;

	ev_clear(ev);
	while (used < n) {
		if (rx->state == RX_ERROR || rx->state == RX_WAIT_DEST)
			break;
		k = rx->need - rx->have;
		if (k > n - used)
			k = n - used;
		switch (rx->state) {
		case RX_CH:
			if (rx->have == 0)
				rx->pdu_start = rx->stream_pos + used;
			to = rx->hdr + rx->have;
			break;
		case RX_HDR:
			to = rx->hdr + RX_CH_LEN + rx->have;
			break;
		case RX_TERM:
			to = rx->scratch + rx->have;
			break;
		case RX_DDGST:
			to = rx->ddgst + rx->have;
			rx->dg_flags &= flags;
			break;
		case RX_PAD: /* padding content is not looked at */
			to = NULL;
			break;
		default: /* RX_DATA */
			to = NULL;
			data_account(rx, k, flags, src ? src + used : NULL, rx->scratch + disc);
			disc += k;
			break;
		}
		if (to && src)
			memcpy(to, src + used, k);
		used += k;
		rx->have += (uint32_t)k;
		if (rx->have == rx->need) {
			part_done(rx, ev);
			if (ev->type != FERRY_NVME_TCP_RX_NONE)
				break;
		}
	}
	rx->stream_pos += used;
	return used;
}

int ferry_nvme_tcp_rx_advance(struct ferry_nvme_tcp_rx *rx, size_t n, uint32_t flags,
			      struct ferry_nvme_tcp_rx_event *ev)
{
	if (!rx || !ev)
		return -EINVAL;
	ev_clear(ev);
	if (n > rx->offered)
		return -EINVAL;
	rx->offered = 0;
	consume(rx, n, flags, NULL, ev);
	return 0;
}

int ferry_nvme_tcp_rx_feed(struct ferry_nvme_tcp_rx *rx, const void *buf, size_t len,
			   size_t *consumed, struct ferry_nvme_tcp_rx_event *ev)
{
	return ferry_nvme_tcp_rx_feed_ex(rx, buf, len, 0, consumed, ev);
}

int ferry_nvme_tcp_rx_feed_ex(struct ferry_nvme_tcp_rx *rx, const void *buf, size_t len,
			      uint32_t flags, size_t *consumed, struct ferry_nvme_tcp_rx_event *ev)
{
	if (!rx || !consumed || !ev || (!buf && len) || (flags & ~FERRY_NVME_TCP_RX_F_CRC_OK))
		return -EINVAL;
	rx->offered = 0;
	*consumed = consume(rx, len, flags, buf, ev);
	return 0;
}

int ferry_nvme_tcp_rx_pdu_at(const struct ferry_nvme_tcp_rx *rx, uint64_t seq)
{
	if (!rx)
		return -EINVAL;
	if (rx->state == RX_CH && rx->have == 0 && seq == rx->stream_pos)
		return 1; /* at a boundary: the next PDU starts there */
	if (seq == rx->pdu_start && rx->stream_pos > seq)
		return 1;
	if (seq < rx->stream_pos)
		return 0;
	return -EAGAIN;
}

uint64_t ferry_nvme_tcp_rx_stream_pos(const struct ferry_nvme_tcp_rx *rx)
{
	return rx ? rx->stream_pos : 0;
}

void ferry_nvme_tcp_rx_fail(struct ferry_nvme_tcp_rx *rx, uint16_t fes, uint32_t fei)
{
	if (!rx || rx->state == RX_ERROR)
		return;
	rx_error(rx, fes, fei, NULL);
}

const void *ferry_nvme_tcp_rx_err_hdr(const struct ferry_nvme_tcp_rx *rx, size_t *len)
{
	if (!rx || !len) {
		if (len)
			*len = 0;
		return NULL;
	}
	*len = rx->hdr_got;
	if (rx->state == RX_CH && rx->have < RX_CH_LEN)
		*len = rx->have;
	return rx->hdr;
}

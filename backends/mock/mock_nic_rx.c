/*
 * The mock offload NIC's receive engine: per offloaded socket it reads the kernel socket in
 * "packets" into a ring, tracks the NVMe/TCP PDUs in them with a small NIC-like parser, places
 * the payload of C2HData PDUs of mapped command ids (memcpy for system memory, through the
 * "nic" function's IOMMU for host memory, checked per page at placement time), verifies data
 * digests, and gives every processed byte its receive flags (spans). recvv() then delivers
 * from the ring: unflagged and unplaced bytes copied into the caller's iovecs, placed payload
 * skipped, one span per call (short where flags change). Loss of tracking (an inconsistent
 * header, or the fault model) starts the resync search: a plausible header in the stream, a
 * speculative tracker from it, the request to the host, its answer.
 */
#include <errno.h>
#include <string.h>
#include <ferry/crc.h>
#include <ferry/nvme_tcp_spec.h>
#include "mock_nic_internal.h"

#define F_PLACED FERRY_HAL_NIC_RX_F_PLACED
#define F_CRC FERRY_HAL_NIC_RX_F_CRC_OK
#define CH_LEN 8u

static const uint8_t *ring_at(const struct mock_nic_sock *s, uint64_t off)
{
	return s->buf + (off - s->ring_base);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Bytes [annot_end, end) get @p flags (end > annot_end). A full span table merges into the
 * last span with the AND of the flags: claims are only ever dropped, and every byte is in the
 * ring, so a byte that loses PLACED is copied from there. */
static void emit(struct mock_nic_sock *s, uint64_t end, uint32_t flags)
{
	if (end <= s->annot_end)
		return;
	if (!s->nspans)
		s->span_head = 0;
	uint32_t last = s->span_head + s->nspans;
	if (s->nspans && s->spans[last - 1].flags == flags) {
		s->spans[last - 1].end = end;
	} else if (last < s->span_cap) {
		s->spans[last] = (struct mock_span){.end = end, .flags = flags};
		s->nspans++;
	} else {
		s->spans[last - 1].end = end;
		s->spans[last - 1].flags &= flags;
	}
	s->annot_end = end;
}

static void track_init(struct mock_track *t, uint64_t start)
{
	*t = (struct mock_track){.pdu_start = start, .hneed = CH_LEN};
}

static struct mock_ddp_map *map_find(struct mock_nic_sock *s, uint16_t cid)
{
	for (uint32_t i = 0; i < s->nmaps; i++)
		if (s->maps[i].state == MAP_MAPPED && s->maps[i].cid == cid)
			return &s->maps[i];
	return NULL;
}

/*
 * Checks the header collected so far (8 bytes: the common header; 24: a C2HData header)
 * against what the queue negotiated. Tolerant like a NIC: anything unexpected is a loss of
 * tracking (return -1), never an error of the connection (the host's own parser decides that).
 */
static int header_check(const struct mock_nic_sock *s, struct mock_track *t)
{
	const uint8_t *h = t->hdr;
	uint8_t type = h[0], fl = h[1], hlen = h[2], pdo = h[3];
	uint32_t plen = get32(h + 4);
	uint32_t hd = s->cfg.hdgst ? FERRY_NVME_TCP_DIGEST_LEN : 0;
	uint8_t hf = s->cfg.hdgst ? FERRY_NVME_TCP_F_HDGST : 0;

	if (t->pos == CH_LEN) {
		t->type = type;
		t->plen = plen;
		t->pdo = pdo;
		if (plen > MOCK_NIC_PLEN_MAX)
			return -1;
		switch (type) {
		case FERRY_NVME_TCP_CAPSULE_RESP:
		case FERRY_NVME_TCP_R2T:
			if (hlen != 24 || pdo != 0 || fl != hf || plen != 24 + hd)
				return -1;
			break;
		case FERRY_NVME_TCP_C2H_TERM:
			if (hlen != 24 || fl != 0 || plen < 24 ||
			    plen > FERRY_NVME_TCP_TERM_MAX_PLEN || (pdo != 0 && pdo != 24) ||
			    (pdo == 0 && plen != 24))
				return -1;
			break;
		case FERRY_NVME_TCP_C2H_DATA: {
			uint32_t align = ((uint32_t)s->cfg.hpda + 1) * 4;
			uint32_t want_pdo = (24 + hd + align - 1) / align * align;
			uint8_t df = s->cfg.ddgst ? FERRY_NVME_TCP_F_DDGST : 0;
			if (hlen != 24 || pdo != want_pdo ||
			    (fl & (FERRY_NVME_TCP_F_HDGST | FERRY_NVME_TCP_F_DDGST)) != (hf | df) ||
			    (fl & ~(FERRY_NVME_TCP_F_HDGST | FERRY_NVME_TCP_F_DDGST |
				    FERRY_NVME_TCP_F_LAST_PDU | FERRY_NVME_TCP_F_SUCCESS)) ||
			    ((fl & FERRY_NVME_TCP_F_SUCCESS) && !(fl & FERRY_NVME_TCP_F_LAST_PDU)))
				return -1;
			t->has_dd = !!df;
			t->hneed = FERRY_NVME_TCP_HLEN_DATA;
			break;
		}
		default:
			return -1; /* ICResp again, host-bound types only */
		}
		return 0;
	}
	/* A whole C2HData header. */
	t->cid = (uint16_t)(h[8] | h[9] << 8);
	t->datao = get32(h + 12);
	t->datal = get32(h + 16);
	if (t->datal == 0 ||
	    (uint64_t)t->pdo + t->datal + (t->has_dd ? FERRY_NVME_TCP_DIGEST_LEN : 0) != t->plen)
		return -1;
	return 0;
}

/* Rate-limited reason of bytes a mapped command did not get. */
static void place_fail_log(struct mock_nic_sock *s, const struct mock_track *t, uint64_t at,
			   uint64_t len, const char *why)
{
	if (mock_nic_ratelimit(s->nic))
		MOCK_WARN("%s: cid %u: %llu payload byte(s) at offset %llu not placed: %s",
			  s->nic->dev->name, t->cid, (unsigned long long)len,
			  (unsigned long long)at, why);
}

/*
 * Places @p l payload bytes @p src at offset @p d of mapping @p m and gives them their flags:
 * PLACED where written (system memory: memcpy; an IOVA domain: per page through the IOMMU
 * as it is now, so a page unmapped since setup is skipped), nothing past the mapping's end.
 */
static void place(struct mock_nic_sock *s, const struct mock_track *t, struct mock_ddp_map *m,
		  uint64_t d, const uint8_t *src, size_t l, uint64_t stream_off, uint32_t crcf)
{
	struct mock_nic *nic = s->nic;
	uint64_t inside = d >= m->len ? 0 : (m->len - d < l ? m->len - d : l);
	uint64_t segoff = d;
	uint32_t i = 0;
	size_t done = 0;

	while (i < m->nseg && segoff >= m->seg[i].iov_len) {
		segoff -= m->seg[i].iov_len;
		i++;
	}
	while (done < inside) {
		uint8_t *base = (uint8_t *)m->seg[i].iov_base + segoff;
		uint64_t chunk = m->seg[i].iov_len - segoff;
		if (chunk > inside - done)
			chunk = inside - done;
		int ok = 1;
		if (!m->domain) {
			memcpy(base, src + done, chunk);
		} else {
			uint64_t iova = (uint64_t)(uintptr_t)base;
			uint64_t to_page = MOCK_PAGE_SIZE - (iova & (MOCK_PAGE_SIZE - 1));
			if (chunk > to_page)
				chunk = to_page;
			struct iovec in = {base, chunk}, out[2];
			struct ferry_mem sub = {.domain = m->domain, .iov = &in, .iovcnt = 1};
			uint32_t cnt = 2;
			if (mock_resolve(nic->dev, &sub, chunk, 1, out, &cnt) == 0) {
				size_t c = 0;
				for (uint32_t k = 0; k < cnt; k++) {
					memcpy(out[k].iov_base, src + done + c, out[k].iov_len);
					c += out[k].iov_len;
				}
			} else {
				ok = 0;
				atomic_fetch_add(&nic->st_drop, chunk);
				place_fail_log(s, t, d + done, chunk,
					       "the NIC function cannot write the page now");
			}
		}
		if (ok)
			atomic_fetch_add(&nic->st_offloaded, chunk);
		done += chunk;
		emit(s, stream_off + done, (ok ? F_PLACED : 0) | crcf);
		segoff += chunk;
		if (segoff == m->seg[i].iov_len) {
			segoff = 0;
			i++;
		}
	}
	if (l > inside) {
		atomic_fetch_add(&nic->st_drop, l - inside);
		place_fail_log(s, t, d + inside, l - inside, "outside the mapping");
		emit(s, stream_off + l, crcf);
	}
}

/*
 * Runs @p n stream bytes at @p p (stream offset @p off) through tracker @p t. @p live: this is
 * the socket's tracker (flags, placement, counters); otherwise a speculative one that only
 * follows the PDU boundaries. Returns 0, or -1 at an inconsistent header (*used: bytes taken
 * before it stopped).
 */
static int track_feed(struct mock_nic_sock *s, struct mock_track *t, uint64_t off, const uint8_t *p,
		      size_t n, int live, int place_ok, int lie, size_t *used)
{
	size_t i = 0;
	while (i < n) {
		if (t->pos == 0) {
			uint64_t start = t->pdu_start;
			track_init(t, start);
			t->no_offload = !live;
		}
		if (!live)
			t->no_offload = 1;
		uint64_t at = off + i;
		if (t->pos < t->hneed) {
			size_t k = t->hneed - t->pos;
			if (k > n - i)
				k = n - i;
			memcpy(t->hdr + t->pos, p + i, k);
			t->pos += (uint32_t)k;
			i += k;
			if (live)
				emit(s, at + k, 0);
			if (t->pos == t->hneed) {
				if (header_check(s, t)) {
					*used = i;
					return -1;
				}
				if (t->pos == t->hneed) { /* complete (8 for non-data, 24 data) */
					t->parsed = 1;
					if (t->type == FERRY_NVME_TCP_C2H_DATA) {
						t->map = live ? map_find(s, t->cid) : NULL;
						t->crc_on = live && t->has_dd &&
							    !mock_nic_draw(s, KNOB_CRC_MISS);
					}
				}
			}
			goto boundary;
		}
		{
			size_t k;
			if (t->type != FERRY_NVME_TCP_C2H_DATA) {
				k = t->plen - t->pos;
				if (k > n - i)
					k = n - i;
				if (live)
					emit(s, at + k, 0);
			} else if (t->pos < t->pdo) {
				k = t->pdo - t->pos; /* header digest, padding */
				if (k > n - i)
					k = n - i;
				if (live)
					emit(s, at + k, 0);
			} else if (t->pos < t->pdo + t->datal) {
				k = t->pdo + t->datal - t->pos;
				if (k > n - i)
					k = n - i;
				uint64_t d = (uint64_t)t->datao + (t->pos - t->pdo);
				if (t->has_dd)
					t->crc = ferry_crc32c(t->crc, p + i, k);
				if (live) {
					uint32_t crcf = t->crc_on && !t->no_offload ? F_CRC : 0;
					struct mock_ddp_map *m = t->map;
					if (m && (m->state != MAP_MAPPED || m->cid != t->cid))
						m = NULL; /* released meanwhile */
					if (t->no_offload) {
						emit(s, at + k, 0);
					} else if (lie) {
						emit(s, at + k, F_PLACED | F_CRC);
					} else if (m && place_ok) {
						place(s, t, m, d, p + i, k, at, crcf);
					} else {
						if (m)
							atomic_fetch_add(&s->nic->st_drop, k);
						emit(s, at + k, crcf);
					}
				}
			} else {
				/* The data digest: its flags wait for its last byte. */
				uint32_t dpos = t->pos - (t->pdo + t->datal);
				k = FERRY_NVME_TCP_DIGEST_LEN - dpos;
				if (k > n - i)
					k = n - i;
				memcpy(t->dgst + dpos, p + i, k);
				if (live && dpos + k == FERRY_NVME_TCP_DIGEST_LEN) {
					int match = get32(t->dgst) == t->crc;
					uint32_t f = 0;
					if (t->crc_on && !t->no_offload && match) {
						f = F_CRC;
						atomic_fetch_add(&s->nic->st_crc, t->datal);
					}
					emit(s, at + k, f);
				}
			}
			t->pos += (uint32_t)k;
			i += k;
		}
boundary:
		if (t->parsed && t->pos == t->plen) {
			t->pdu_start += t->plen;
			t->pos = 0;
		}
	}
	*used = i;
	return 0;
}

/* Stop tracking: bytes up to @p cur lose any pending verdict, the search starts at @p from. */
static void lose_sync(struct mock_nic_sock *s, uint64_t cur, uint64_t from)
{
	emit(s, cur, 0);
	s->synced = 0;
	s->shadow_on = 0;
	s->req_out = s->req_issue = s->real_pending = 0;
	s->scan_pos = from;
}

/*
 * The resync search: the first offset from scan_pos where a plausible PDU header starts and
 * from which a speculative tracker follows the rest of the ring without inconsistency. The
 * request names it (or, by the fault model, the byte before it first).
 */
static void search(struct mock_nic_sock *s)
{
	if (s->synced || s->req_out || s->req_issue)
		return;
	if (s->scan_pos < s->ring_base)
		s->scan_pos = s->ring_base;
	while (s->scan_pos + FERRY_NVME_TCP_HLEN_DATA <= s->rx_end) {
		uint64_t c = s->scan_pos++;
		struct mock_track t;
		size_t used;
		track_init(&t, c);
		if (track_feed(s, &t, c, ring_at(s, c), s->rx_end - c, 0, 0, 0, &used))
			continue;
		s->shadow = t;
		s->cand = c;
		s->shadow_on = 1;
		s->shadow_dead = 0;
		s->real_pending = c > 0 && mock_nic_draw(s, KNOB_RESYNC_WRONG);
		s->req_seq = s->real_pending ? c - 1 : c;
		s->req_issue = 1;
		return;
	}
}

void mock_nic_resync_issue(struct mock_nic_sock *s)
{
	if (!s->req_issue || !s->offloaded)
		return;
	s->req_issue = 0;
	s->req_out = 1;
	atomic_fetch_add(&s->nic->st_resync, 1);
	s->cfg.resync(s->cfg.ctx, s->req_seq);
}

/* One "packet" arrived: bytes [start, start + n) of the ring. */
static void process_packet(struct mock_nic_sock *s, uint64_t start, size_t n)
{
	uint64_t off = start, end = start + n;
	int place_ok = 1, lie = 0;

	atomic_fetch_add(&s->nic->st_packets, 1);
	atomic_fetch_add(&s->nic->st_bytes, n);
	if (s->synced && mock_nic_draw(s, KNOB_RESYNC))
		lose_sync(s, start, start); /* as if the NIC missed where this packet is */
	if (s->synced) {
		place_ok = !mock_nic_draw(s, KNOB_PLACE_MISS);
		lie = mock_nic_draw(s, KNOB_LIE);
	}
	while (off < end && s->synced) {
		size_t used = 0;
		if (track_feed(s, &s->t, off, ring_at(s, off), end - off, 1, place_ok, lie,
			       &used)) {
			off += used;
			lose_sync(s, off, s->t.pdu_start + 1);
			break;
		}
		off += used;
	}
	if (s->synced)
		return;
	emit(s, end, 0);
	if (s->shadow_on && !s->shadow_dead && off < end) {
		size_t used;
		if (track_feed(s, &s->shadow, off, ring_at(s, off), end - off, 0, 0, 0, &used))
			s->shadow_dead = 1;
	}
	search(s);
}

/* Reads one packet from the kernel socket into the ring (everything annotated delivered). */
static ssize_t read_packet(struct mock_nic_sock *s)
{
	uint64_t keep = s->delivered;
	if (s->rx_end - keep < MOCK_NIC_LOOKBACK)
		keep = s->rx_end > MOCK_NIC_LOOKBACK ? s->rx_end - MOCK_NIC_LOOKBACK : 0;
	if (keep < s->ring_base)
		keep = s->ring_base;
	memmove(s->buf, s->buf + (keep - s->ring_base), (size_t)(s->rx_end - keep));
	s->ring_base = keep;
	s->span_head = 0;
	s->nspans = 0;
	size_t have = (size_t)(s->rx_end - s->ring_base);
	size_t want = s->cap - have;
	if (want > s->nic->pkt)
		want = s->nic->pkt;
	struct iovec v = {s->buf + have, want};
	uint32_t fl;
	ssize_t r = ferry_hal_lsock_recvv(s->sock, &v, 1, &fl);
	if (r <= 0)
		return r;
	s->rx_end += (uint64_t)r;
	process_packet(s, s->rx_end - (uint64_t)r, (size_t)r);
	return r;
}

ssize_t mock_nic_recvv(struct ferry_hal_sock *sock, const struct iovec *iov, uint32_t iovcnt,
		       uint32_t *flags)
{
	struct mock_nic_sock *s = sock ? ferry_hal_lsock_get_priv(sock) : NULL;
	if (!s)
		return ferry_hal_lsock_recvv(sock, iov, iovcnt, flags);
	if (!s->offloaded && s->annot_end == s->delivered) {
		ssize_t r = ferry_hal_lsock_recvv(sock, iov, iovcnt, flags);
		if (r > 0) {
			/* nothing tracked: the ring stays empty at the delivered offset */
			s->delivered += (uint64_t)r;
			s->ring_base = s->rx_end = s->annot_end = s->delivered;
		}
		return r;
	}
	size_t room = 0;
	if (!iov || iovcnt == 0 || iovcnt > 64) {
		MOCK_ERR("recvv: %u iovecs (1..64)", iovcnt);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len && !iov[i].iov_base) {
			MOCK_ERR("recvv: iovec %u has a NULL base", i);
			return -EINVAL;
		}
		room += iov[i].iov_len;
	}
	if (!room) {
		MOCK_ERR("recvv: no room for a byte");
		return -EINVAL;
	}
	while (s->annot_end == s->delivered) {
		if (s->eof) {
			emit(s, s->rx_end, 0); /* a digest cut by the end of the stream */
			if (s->annot_end == s->delivered) {
				mock_nic_update_ready(s);
				return 0;
			}
			break;
		}
		ssize_t r = read_packet(s);
		if (r == 0) {
			s->eof = 1;
		} else if (r < 0) {
			mock_nic_resync_issue(s);
			mock_nic_update_ready(s);
			return r;
		}
	}
	struct mock_span *sp = &s->spans[s->span_head];
	uint64_t n = sp->end - s->delivered;
	if (n > room)
		n = room;
	uint32_t f = sp->flags;
	if (!(f & F_PLACED)) {
		const uint8_t *src = ring_at(s, s->delivered);
		uint64_t left = n;
		for (uint32_t i = 0; left; i++) {
			size_t c = iov[i].iov_len < left ? iov[i].iov_len : (size_t)left;
			memcpy(iov[i].iov_base, src, c);
			src += c;
			left -= c;
		}
	}
	s->delivered += n;
	if (s->delivered == sp->end) {
		s->span_head++;
		s->nspans--;
	}
	if (flags)
		*flags = f;
	/* A request found while processing goes out now, on the polling thread. */
	mock_nic_resync_issue(s);
	mock_nic_update_ready(s);
	return (ssize_t)n;
}

void mock_nic_ddp_resync(struct ferry_hal_sock *sock, uint64_t seq, int found)
{
	struct mock_nic_sock *s = sock ? ferry_hal_lsock_get_priv(sock) : NULL;
	if (!s || !s->offloaded)
		return;
	if (!s->req_out || seq != s->req_seq) {
		if (mock_nic_ratelimit(s->nic))
			MOCK_WARN("%s: ddp_resync %llu: no request for that offset is outstanding",
				  s->nic->dev->name, (unsigned long long)seq);
		return;
	}
	s->req_out = 0;
	if (!found) {
		atomic_fetch_add(&s->nic->st_resync_fail, 1);
		if (s->real_pending && s->shadow_on && !s->shadow_dead) {
			/* The wrong offset asked first: now the candidate. */
			s->real_pending = 0;
			s->req_seq = s->cand;
			s->req_issue = 1;
		} else {
			s->real_pending = 0;
			s->shadow_on = 0;
			if (s->scan_pos < seq + 1)
				s->scan_pos = seq + 1;
			search(s);
		}
	} else {
		struct mock_track t;
		size_t used;
		int ok = 0;
		if (s->shadow_on && !s->shadow_dead && s->cand == seq) {
			t = s->shadow;
			ok = 1;
		} else if (seq >= s->ring_base && seq <= s->rx_end) {
			track_init(&t, seq);
			ok = !track_feed(s, &t, seq, ring_at(s, seq), s->rx_end - seq, 0, 0, 0,
					 &used);
		}
		s->shadow_on = 0;
		s->real_pending = 0;
		if (ok) {
			/* Bytes processed so far keep no flags; the PDU in progress stays
			 * untracked (no_offload) and the next one is offloaded again. */
			s->t = t;
			s->synced = 1;
		} else {
			if (s->scan_pos < seq + 1)
				s->scan_pos = seq + 1;
			search(s);
		}
	}
	if (s->req_issue)
		mock_nic_due_link(s);
	mock_nic_update_ready(s);
}

void mock_nic_rx_start(struct mock_nic_sock *s)
{
	size_t used;
	s->synced = 1;
	s->shadow_on = 0;
	s->req_out = s->req_issue = s->real_pending = 0;
	if (s->annot_end == s->delivered && s->rx_end == s->delivered) {
		s->ring_base = s->rx_end = s->annot_end = s->delivered;
		s->span_head = s->nspans = 0;
	}
	track_init(&s->t, s->delivered);
	if (s->rx_end > s->delivered && track_feed(s, &s->t, s->delivered, ring_at(s, s->delivered),
						   s->rx_end - s->delivered, 0, 0, 0, &used))
		lose_sync(s, s->rx_end, s->delivered + 1);
}

void mock_nic_rx_stop(struct mock_nic_sock *s)
{
	/* Later bytes come without flags: so do the ones still in the ring (they are all
	 * there, placed or not, so they are copied). */
	for (uint32_t i = 0; i < s->nspans; i++)
		s->spans[s->span_head + i].flags = 0;
	emit(s, s->rx_end, 0);
	s->synced = 0;
	s->shadow_on = 0;
	s->req_out = s->req_issue = s->real_pending = 0;
	s->t.map = NULL;
}

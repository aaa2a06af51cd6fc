/*
 * A scripted NVMe/TCP controller for the nvmf bdev's tests: a listening socket on 127.0.0.1
 * (ephemeral port), one thread per connection, PDUs parsed and built by hand from the wire
 * layouts (independent of Ferry's codec, so the tests also cross-check it), a RAM namespace
 * that outlives connections, a record of what the host sent (ICReq, Connect), and fault
 * injection (connection drops, bad cids, oversize C2HData, TermReqs, malformed completions,
 * corrupted data digests, R2T splits, an NVMe error status, a command never answered), a
 * configurable MDTS and counts of the commands by kind (to see how the host split its I/O).
 */
#ifndef FAKE_TARGET_H
#define FAKE_TARGET_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <ferry/crc.h>
#include <ferry/nvme_spec.h>
#include <ferry/nvme_tcp_spec.h>
#include <ferry/nvmf_spec.h>

struct fake_conn;

enum fake_fault {
	FAULT_NONE = 0,
	FAULT_DROP,             /* close every connection when the Nth I/O command arrives */
	FAULT_BAD_CID,          /* answer the Nth I/O command with an unknown cid */
	FAULT_OVERSIZE_C2H,     /* C2HData beyond the read's length */
	FAULT_TERM,             /* C2HTermReq instead of the Nth command's answer */
	FAULT_BAD_CQE,          /* a CapsuleResp with a wrong HLEN */
	FAULT_BAD_DDGST,        /* corrupt the data digest of the Nth read */
	FAULT_SHORT_READ,       /* success after half the data */
	FAULT_R2T_BEYOND,       /* R2T beyond the write's length */
	FAULT_C2H_FOR_WRITE,    /* C2HData naming a write */
	FAULT_NO_KEEP_ALIVE,    /* never answer a Keep Alive */
	FAULT_R2T_FOR_READ,     /* an R2T naming a read */
	FAULT_C2H_OUT_OF_ORDER, /* the read's C2HData starts at a non-zero offset */
	FAULT_STATUS,           /* answer the Nth I/O command with fault_status, no data moved */
	FAULT_NO_ANSWER,        /* swallow the Nth I/O command (keep-alives still answered) */
};

struct fake_target {
	int lfd;
	uint16_t port;
	char addr[32];
	pthread_t acceptor;
	atomic_int stop;
	/* config */
	uint32_t block_size;
	uint64_t blocks;
	uint32_t ioccsz; /* 4: no in-capsule data on I/O queues */
	uint32_t maxh2cdata;
	uint32_t r2t_split; /* bytes per R2T (0: one R2T for the whole write) */
	uint32_t c2h_chunk; /* bytes per C2HData */
	int c2h_success;    /* use the SUCCESS flag instead of a CapsuleResp */
	int allow_dgst;     /* grant the digests the host asks for */
	enum fake_fault fault;
	int fault_n;           /* the I/O command (1-based) the fault hits */
	int fault_once;        /* the fault hits only once */
	uint16_t fault_status; /* FAULT_STATUS: the status (SCT << 8 | SC) */
	uint8_t mdts;          /* Identify MDTS (units of 4 KiB pages, power of two); 0: 5 */
	/* a test's own answer to an I/O command (scripted attacks): returns 1 to let the
	 * target answer as usual, else what ft_io() returns (0: go on, < 0: close) */
	int (*io_hook)(struct fake_conn *c, struct ferry_nvme_sqe *e, int n);
	void *hook_arg;
	/* state */
	uint8_t *storage;
	pthread_mutex_t lock;
	atomic_int io_cmds;
	atomic_int data_cmds;      /* reads, writes, compares */
	atomic_int wz_cmds;        /* Write Zeroes */
	atomic_uint max_data_len;  /* largest data command, bytes */
	atomic_uint max_wz_blocks; /* largest Write Zeroes, blocks */
	atomic_int connections;
	atomic_int fault_fired;
	atomic_int terms_received;
	atomic_int conns_open;
	int fds[64];
	int nfds;
	uint8_t icreq[128]; /* first ICReq */
	uint8_t connect_cmd[64];
	uint8_t connect_data[1024];
	int cc_en;
	uint32_t kato;
};

struct fake_cmd {
	uint8_t hdr[160];
	uint8_t *data;
	uint32_t dlen;
};

struct fake_conn {
	struct fake_target *t;
	int fd;
	int hdgst, ddgst;
	uint16_t qid;
	/* capsules that arrived while a write's H2CData was awaited (the host pipelines) */
	struct fake_cmd backlog[256];
	uint32_t bl_head, bl_count;
};

static int ft_read(int fd, void *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t r = read(fd, (uint8_t *)buf + off, len - off);
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

static int ft_write(int fd, const void *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t r = send(fd, (const uint8_t *)buf + off, len - off, MSG_NOSIGNAL);
		if (r <= 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

/* Send header (+ hdgst) + data (+ ddgst); bad_ddgst flips the digest. */
static int ft_send_pdu(struct fake_conn *c, void *hdr, uint32_t hlen, const void *data,
		       uint32_t dlen, int bad_ddgst)
{
	struct ferry_nvme_tcp_ch *ch = hdr;
	uint8_t buf[256 + 8];
	uint32_t hd = c->hdgst ? 4 : 0, dd = (c->ddgst && dlen) ? 4 : 0;
	ch->hlen = (uint8_t)hlen;
	if (c->hdgst)
		ch->flags |= FERRY_NVME_TCP_F_HDGST;
	if (dd)
		ch->flags |= FERRY_NVME_TCP_F_DDGST;
	ch->pdo = dlen ? (uint8_t)(hlen + hd) : 0;
	ch->plen = hlen + hd + dlen + dd;
	memcpy(buf, hdr, hlen);
	if (hd) {
		uint32_t crc = ferry_crc32c(0, buf, hlen);
		memcpy(buf + hlen, &crc, 4);
	}
	if (ft_write(c->fd, buf, hlen + hd))
		return -1;
	if (dlen && ft_write(c->fd, data, dlen))
		return -1;
	if (dd) {
		uint32_t crc = ferry_crc32c(0, data, dlen) ^ (bad_ddgst ? 1u : 0u);
		if (ft_write(c->fd, &crc, 4))
			return -1;
	}
	return 0;
}

static int ft_resp(struct fake_conn *c, uint16_t cid, uint16_t status, uint32_t dw0, uint32_t dw1)
{
	struct ferry_nvme_tcp_resp r;
	memset(&r, 0, sizeof(r));
	r.ch.pdu_type = FERRY_NVME_TCP_CAPSULE_RESP;
	r.cqe.dw0 = dw0;
	r.cqe.dw1 = dw1;
	r.cqe.cid = cid;
	r.cqe.sqid = c->qid;
	r.cqe.status = (uint16_t)(status << 1);
	return ft_send_pdu(c, &r, 24, NULL, 0, 0);
}

/* Read one PDU: header into hdr (>= 128 bytes), data into *data (malloc'd, len in *dlen). */
static int ft_recv_pdu(struct fake_conn *c, uint8_t *hdr, uint8_t **data, uint32_t *dlen)
{
	struct ferry_nvme_tcp_ch *ch = (void *)hdr;
	*data = NULL;
	*dlen = 0;
	if (ft_read(c->fd, hdr, 8))
		return -1;
	if (ch->hlen < 8 || ch->hlen > 128 || ft_read(c->fd, hdr + 8, ch->hlen - 8u))
		return -1;
	uint32_t got = ch->hlen;
	if (ch->flags & FERRY_NVME_TCP_F_HDGST) {
		uint32_t d;
		if (ft_read(c->fd, &d, 4) || d != ferry_crc32c(0, hdr, ch->hlen))
			return -2;
		got += 4;
	}
	if (ch->pdo) {
		uint8_t pad[128];
		if (ch->pdo < got || ft_read(c->fd, pad, ch->pdo - got))
			return -1;
		got = ch->pdo;
	}
	uint32_t dd = (ch->flags & FERRY_NVME_TCP_F_DDGST) && ch->pdo ? 4 : 0;
	if (ch->plen < got + dd)
		return -1;
	uint32_t n = ch->plen - got - dd;
	if (n) {
		*data = malloc(n);
		if (ft_read(c->fd, *data, n))
			return -1;
		*dlen = n;
		if (dd) {
			uint32_t d;
			if (ft_read(c->fd, &d, 4) || d != ferry_crc32c(0, *data, n))
				return -3;
		}
	}
	return 0;
}

static int ft_fault_hits(struct fake_target *t, int n, enum fake_fault f)
{
	if (t->fault != f || n != t->fault_n)
		return 0;
	if (t->fault_once && atomic_exchange(&t->fault_fired, 1))
		return 0;
	if (!t->fault_once)
		atomic_store(&t->fault_fired, 1);
	return 1;
}

static void ft_drop_all(struct fake_target *t)
{
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->nfds; i++)
		if (t->fds[i] >= 0)
			shutdown(t->fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&t->lock);
}

/* Receive a write's data by R2T/H2CData into buf (len bytes). */
static int ft_pull_h2c(struct fake_conn *c, uint16_t cid, uint8_t *buf, uint32_t len, int n)
{
	struct fake_target *t = c->t;
	uint32_t off = 0;
	uint16_t ttag = 1;
	while (off < len) {
		uint32_t chunk = t->r2t_split ? t->r2t_split : len;
		if (chunk > len - off)
			chunk = len - off;
		struct ferry_nvme_tcp_r2t r;
		memset(&r, 0, sizeof(r));
		r.ch.pdu_type = FERRY_NVME_TCP_R2T;
		r.cccid = cid;
		r.ttag = ttag;
		r.r2to = off;
		r.r2tl = chunk;
		if (ft_fault_hits(t, n, FAULT_R2T_BEYOND))
			r.r2tl = len - off + 4096;
		if (ft_send_pdu(c, &r, 24, NULL, 0, 0))
			return -1;
		uint32_t got = 0;
		while (got < chunk) {
			uint8_t hdr[160];
			uint8_t *data;
			uint32_t dlen;
			int rc = ft_recv_pdu(c, hdr, &data, &dlen);
			if (rc)
				return rc;
			struct ferry_nvme_tcp_data *d = (void *)hdr;
			if (d->ch.pdu_type == FERRY_NVME_TCP_CAPSULE_CMD && c->bl_count < 256) {
				struct fake_cmd *b =
					&c->backlog[(c->bl_head + c->bl_count++) % 256];
				memcpy(b->hdr, hdr, sizeof(b->hdr));
				b->data = data;
				b->dlen = dlen;
				continue;
			}
			if (d->ch.pdu_type == FERRY_NVME_TCP_H2C_TERM) {
				atomic_fetch_add(&t->terms_received, 1);
				free(data);
				return -1;
			}
			if (d->ch.pdu_type != FERRY_NVME_TCP_H2C_DATA || d->cccid != cid ||
			    d->ttag != ttag || d->datao != off + got || d->datal != dlen ||
			    got + dlen > chunk || dlen > t->maxh2cdata ||
			    (!!(d->ch.flags & FERRY_NVME_TCP_F_LAST_PDU) !=
			     (got + dlen == chunk))) {
				fprintf(stderr, "fake target: bad H2CData\n");
				free(data);
				return -1;
			}
			memcpy(buf + off + got, data, dlen);
			got += dlen;
			free(data);
		}
		off += chunk;
		ttag++;
	}
	return 0;
}

static int ft_admin(struct fake_conn *c, struct ferry_nvme_sqe *e, uint8_t *data, uint32_t dlen)
{
	struct fake_target *t = c->t;
	if (e->opcode == FERRY_NVMF_OPC_FABRICS) {
		struct ferry_nvmf_cmd *f = (void *)e;
		if (f->fctype == FERRY_NVMF_FCTYPE_CONNECT) {
			struct ferry_nvmf_connect_cmd *cc = (void *)e;
			c->qid = cc->qid;
			if (!cc->qid) {
				pthread_mutex_lock(&t->lock);
				memcpy(t->connect_cmd, e, 64);
				if (data && dlen >= 1024)
					memcpy(t->connect_data, data, 1024);
				t->kato = cc->kato;
				t->cc_en = 0;
				pthread_mutex_unlock(&t->lock);
			}
			return ft_resp(c, e->cid, 0, 1, 0);
		}
		if (f->fctype == FERRY_NVMF_FCTYPE_PROPERTY_GET) {
			struct ferry_nvmf_prop_get_cmd *p = (void *)e;
			uint64_t v = 0;
			if (p->offset == FERRY_NVME_REG_CAP)
				v = 127 | (1ull << 24) | FERRY_NVME_CAP_CSS_NVM;
			else if (p->offset == FERRY_NVME_REG_VS)
				v = FERRY_NVME_VS_1_4;
			else if (p->offset == FERRY_NVME_REG_CSTS)
				v = t->cc_en ? FERRY_NVME_CSTS_RDY : 0;
			return ft_resp(c, e->cid, 0, (uint32_t)v, (uint32_t)(v >> 32));
		}
		if (f->fctype == FERRY_NVMF_FCTYPE_PROPERTY_SET) {
			struct ferry_nvmf_prop_set_cmd *p = (void *)e;
			if (p->offset == FERRY_NVME_REG_CC)
				t->cc_en = (int)(p->value & 1);
			return ft_resp(c, e->cid, 0, 0, 0);
		}
		return ft_resp(c, e->cid, FERRY_NVME_SC_INVALID_FIELD, 0, 0);
	}
	switch (e->opcode) {
	case FERRY_NVME_ADM_IDENTIFY: {
		uint8_t buf[4096];
		memset(buf, 0, sizeof(buf));
		uint8_t cns = (uint8_t)e->cdw10;
		if (cns == FERRY_NVME_CNS_CTRLR) {
			struct ferry_nvme_id_ctrlr *id = (void *)buf;
			id->mdts = t->mdts ? t->mdts : 5;
			id->sgls = 1;
			id->nn = 1;
			id->oncs = 0x0d;
			memcpy(id->nvmf, &t->ioccsz, 4);
		} else if (cns == FERRY_NVME_CNS_ACTIVE_NS_LIST) {
			uint32_t one = 1;
			memcpy(buf, &one, 4);
		} else if (cns == FERRY_NVME_CNS_NS && e->nsid == 1) {
			struct ferry_nvme_id_ns *ns = (void *)buf;
			ns->nsze = ns->ncap = t->blocks;
			ns->lbaf[0].lbads = (uint8_t)__builtin_ctz(t->block_size);
		}
		struct ferry_nvme_tcp_data d;
		memset(&d, 0, sizeof(d));
		d.ch.pdu_type = FERRY_NVME_TCP_C2H_DATA;
		d.ch.flags = FERRY_NVME_TCP_F_LAST_PDU;
		d.cccid = e->cid;
		d.datal = 4096;
		if (ft_send_pdu(c, &d, 24, buf, 4096, 0))
			return -1;
		return ft_resp(c, e->cid, 0, 0, 0);
	}
	case FERRY_NVME_ADM_SET_FEATURES:
		return ft_resp(c, e->cid, 0, e->cdw11, 0);
	case FERRY_NVME_ADM_KEEP_ALIVE:
		if (t->fault == FAULT_NO_KEEP_ALIVE) {
			atomic_store(&t->fault_fired, 1);
			return 0;
		}
		return ft_resp(c, e->cid, 0, 0, 0);
	default:
		return ft_resp(c, e->cid, FERRY_NVME_SC_INVALID_OPCODE, 0, 0);
	}
}

static int ft_io(struct fake_conn *c, struct ferry_nvme_sqe *e, uint8_t *icd, uint32_t icd_len)
{
	struct fake_target *t = c->t;
	int n = atomic_fetch_add(&t->io_cmds, 1) + 1;
	uint64_t slba = e->cdw10 | (uint64_t)e->cdw11 << 32;
	uint32_t nlb = (e->cdw12 & 0xffff) + 1;
	uint64_t off = slba * t->block_size;
	uint32_t len = nlb * t->block_size;

	if (t->io_hook) {
		int hr = t->io_hook(c, e, n);
		if (hr != 1)
			return hr;
	}
	if (ft_fault_hits(t, n, FAULT_DROP)) {
		ft_drop_all(t);
		return -1;
	}
	if (ft_fault_hits(t, n, FAULT_TERM)) {
		struct ferry_nvme_tcp_term term;
		memset(&term, 0, sizeof(term));
		term.ch.pdu_type = FERRY_NVME_TCP_C2H_TERM;
		term.ch.hlen = 24;
		term.ch.plen = 24;
		term.fes = FERRY_NVME_TCP_FES_INVALID_HEADER;
		ft_write(c->fd, &term, 24);
		return -1;
	}
	if (ft_fault_hits(t, n, FAULT_NO_ANSWER))
		return 0; /* no data, no completion: the connection stays up */
	if (e->opcode == FERRY_NVME_CMD_READ || e->opcode == FERRY_NVME_CMD_WRITE ||
	    e->opcode == FERRY_NVME_CMD_COMPARE) {
		atomic_fetch_add(&t->data_cmds, 1);
		unsigned m = atomic_load(&t->max_data_len);
		while (len > m && !atomic_compare_exchange_weak(&t->max_data_len, &m, len))
			;
	}
	if (e->opcode == FERRY_NVME_CMD_WRITE_ZEROES) {
		atomic_fetch_add(&t->wz_cmds, 1);
		unsigned m = atomic_load(&t->max_wz_blocks);
		while (nlb > m && !atomic_compare_exchange_weak(&t->max_wz_blocks, &m, nlb))
			;
	}
	if (ft_fault_hits(t, n, FAULT_STATUS)) {
		/* a write's data is still taken (R2T) so the stream stays in step */
		if ((e->opcode == FERRY_NVME_CMD_WRITE || e->opcode == FERRY_NVME_CMD_COMPARE) &&
		    !icd) {
			uint8_t *buf = malloc(len);
			int rc = ft_pull_h2c(c, e->cid, buf, len, n);
			free(buf);
			if (rc)
				return -1;
		}
		return ft_resp(c, e->cid, t->fault_status, 0, 0);
	}
	if (ft_fault_hits(t, n, FAULT_BAD_CID))
		return ft_resp(c, (uint16_t)(e->cid ^ 0x5a5a), 0, 0, 0);
	if (ft_fault_hits(t, n, FAULT_BAD_CQE)) {
		struct ferry_nvme_tcp_resp r;
		memset(&r, 0, sizeof(r));
		r.ch.pdu_type = FERRY_NVME_TCP_CAPSULE_RESP;
		r.ch.hlen = 20;
		r.ch.plen = 24;
		r.cqe.cid = e->cid;
		return ft_write(c->fd, &r, 24);
	}
	if (e->opcode == FERRY_NVME_CMD_READ || e->opcode == FERRY_NVME_CMD_WRITE ||
	    e->opcode == FERRY_NVME_CMD_WRITE_ZEROES || e->opcode == FERRY_NVME_CMD_COMPARE) {
		if (slba + nlb > t->blocks)
			return ft_resp(c, e->cid, FERRY_NVME_SC_LBA_RANGE, 0, 0);
	}
	switch (e->opcode) {
	case FERRY_NVME_CMD_READ: {
		uint32_t chunk = t->c2h_chunk ? t->c2h_chunk : len;
		uint32_t end = len;
		if (ft_fault_hits(t, n, FAULT_SHORT_READ))
			end = len / 2;
		if (ft_fault_hits(t, n, FAULT_R2T_FOR_READ)) {
			struct ferry_nvme_tcp_r2t r;
			memset(&r, 0, sizeof(r));
			r.ch.pdu_type = FERRY_NVME_TCP_R2T;
			r.cccid = e->cid;
			r.ttag = 1;
			r.r2tl = len;
			return ft_send_pdu(c, &r, 24, NULL, 0, 0);
		}
		uint32_t first = 0;
		if (ft_fault_hits(t, n, FAULT_C2H_OUT_OF_ORDER))
			first = chunk < end ? chunk : 0;
		int oversize = ft_fault_hits(t, n, FAULT_OVERSIZE_C2H);
		int bad = ft_fault_hits(t, n, FAULT_BAD_DDGST);
		for (uint32_t o = first; o < end; o += chunk) {
			uint32_t l = chunk < end - o ? chunk : end - o;
			struct ferry_nvme_tcp_data d;
			memset(&d, 0, sizeof(d));
			d.ch.pdu_type = FERRY_NVME_TCP_C2H_DATA;
			int last = o + l == end;
			if (last)
				d.ch.flags = FERRY_NVME_TCP_F_LAST_PDU |
					     (t->c2h_success && end == len
						      ? FERRY_NVME_TCP_F_SUCCESS
						      : 0);
			d.cccid = e->cid;
			d.datao = o;
			d.datal = l + (oversize && last ? 512 : 0);
			uint8_t *src = malloc(d.datal);
			pthread_mutex_lock(&t->lock);
			memcpy(src, t->storage + off + o, l);
			pthread_mutex_unlock(&t->lock);
			if (d.datal > l)
				memset(src + l, 0xee, d.datal - l);
			int rc = ft_send_pdu(c, &d, 24, src, d.datal, bad && last);
			free(src);
			if (rc)
				return -1;
		}
		if (t->c2h_success && end == len)
			return 0;
		return ft_resp(c, e->cid, 0, 0, 0);
	}
	case FERRY_NVME_CMD_WRITE:
	case FERRY_NVME_CMD_COMPARE: {
		uint8_t *buf = malloc(len);
		if (ft_fault_hits(t, n, FAULT_C2H_FOR_WRITE)) {
			struct ferry_nvme_tcp_data d;
			memset(&d, 0, sizeof(d));
			d.ch.pdu_type = FERRY_NVME_TCP_C2H_DATA;
			d.ch.flags = FERRY_NVME_TCP_F_LAST_PDU;
			d.cccid = e->cid;
			d.datal = 512;
			memset(buf, 0xee, 512);
			ft_send_pdu(c, &d, 24, buf, 512, 0);
			free(buf);
			return 0;
		}
		if (icd) {
			if (icd_len != len) {
				free(buf);
				return ft_resp(c, e->cid, FERRY_NVME_SC_DATA_SGL_LEN, 0, 0);
			}
			memcpy(buf, icd, len);
		} else {
			int rc = ft_pull_h2c(c, e->cid, buf, len, n);
			if (rc) {
				free(buf);
				return -1;
			}
		}
		uint16_t st = 0;
		pthread_mutex_lock(&t->lock);
		if (e->opcode == FERRY_NVME_CMD_WRITE)
			memcpy(t->storage + off, buf, len);
		else if (memcmp(t->storage + off, buf, len))
			st = FERRY_NVME_STATUS(FERRY_NVME_SCT_MEDIA, FERRY_NVME_SC_COMPARE_FAILURE);
		pthread_mutex_unlock(&t->lock);
		free(buf);
		return ft_resp(c, e->cid, st, 0, 0);
	}
	case FERRY_NVME_CMD_WRITE_ZEROES:
		/* zero only the non-zero pages: a large namespace stays untouched (calloc'd) */
		pthread_mutex_lock(&t->lock);
		for (uint64_t o = 0; o < len; o += 4096) {
			uint8_t *p = t->storage + off + o;
			size_t l = len - o < 4096 ? (size_t)(len - o) : 4096;
			static const uint8_t zero[4096];
			if (memcmp(p, zero, l))
				memset(p, 0, l);
		}
		pthread_mutex_unlock(&t->lock);
		return ft_resp(c, e->cid, 0, 0, 0);
	case FERRY_NVME_CMD_DSM: {
		struct ferry_nvme_dsm_range r;
		if (icd && icd_len >= sizeof(r))
			memcpy(&r, icd, sizeof(r));
		else if (ft_pull_h2c(c, e->cid, (uint8_t *)&r, sizeof(r), n))
			return -1;
		if (r.slba + r.nlb <= t->blocks) {
			pthread_mutex_lock(&t->lock);
			memset(t->storage + r.slba * t->block_size, 0,
			       (size_t)r.nlb * t->block_size);
			pthread_mutex_unlock(&t->lock);
		}
		return ft_resp(c, e->cid, 0, 0, 0);
	}
	case FERRY_NVME_CMD_FLUSH:
		return ft_resp(c, e->cid, 0, 0, 0);
	default:
		return ft_resp(c, e->cid, FERRY_NVME_SC_INVALID_OPCODE, 0, 0);
	}
}

static void *ft_conn_main(void *arg)
{
	struct fake_conn *c = arg;
	struct fake_target *t = c->t;
	uint8_t hdr[160];
	struct ferry_nvme_tcp_icreq *req = (void *)hdr;
	if (ft_read(c->fd, hdr, 128) || req->ch.pdu_type != FERRY_NVME_TCP_ICREQ)
		goto out;
	pthread_mutex_lock(&t->lock);
	if (atomic_fetch_add(&t->connections, 1) == 0)
		memcpy(t->icreq, hdr, 128);
	pthread_mutex_unlock(&t->lock);
	uint8_t dgst = t->allow_dgst ? req->dgst : 0;
	c->hdgst = !!(dgst & FERRY_NVME_TCP_DGST_HDGST);
	c->ddgst = !!(dgst & FERRY_NVME_TCP_DGST_DDGST);
	struct ferry_nvme_tcp_icresp rsp;
	memset(&rsp, 0, sizeof(rsp));
	rsp.ch.pdu_type = FERRY_NVME_TCP_ICRESP;
	rsp.ch.hlen = 128;
	rsp.ch.plen = 128;
	rsp.dgst = dgst;
	rsp.maxh2cdata = t->maxh2cdata;
	if (ft_write(c->fd, &rsp, 128))
		goto out;
	while (!atomic_load(&t->stop)) {
		uint8_t *data;
		uint32_t dlen;
		if (c->bl_count) {
			struct fake_cmd *b = &c->backlog[c->bl_head];
			c->bl_head = (c->bl_head + 1) % 256;
			c->bl_count--;
			memcpy(hdr, b->hdr, sizeof(b->hdr));
			data = b->data;
			dlen = b->dlen;
		} else if (ft_recv_pdu(c, hdr, &data, &dlen)) {
			break;
		}
		struct ferry_nvme_tcp_ch *ch = (void *)hdr;
		int rc = 0;
		if (ch->pdu_type == FERRY_NVME_TCP_CAPSULE_CMD) {
			struct ferry_nvme_tcp_cmd *cmd = (void *)hdr;
			/* as Linux nvmet: every fabrics command uses SGLs (PSDT 01b) */
			if ((cmd->sqe.flags >> FERRY_NVME_FLAGS_PSDT_SHIFT) !=
			    FERRY_NVME_PSDT_SGL_MPTR_CONTIG)
				rc = ft_resp(c, cmd->sqe.cid,
					     FERRY_NVME_SC_INVALID_FIELD | FERRY_NVME_STATUS_DNR, 0,
					     0);
			else if (cmd->sqe.opcode == FERRY_NVMF_OPC_FABRICS || c->qid == 0)
				rc = ft_admin(c, &cmd->sqe, data, dlen);
			else
				rc = ft_io(c, &cmd->sqe, data, dlen);
		} else if (ch->pdu_type == FERRY_NVME_TCP_H2C_TERM) {
			atomic_fetch_add(&t->terms_received, 1);
			rc = -1;
		} else {
			rc = -1;
		}
		free(data);
		if (rc)
			break;
	}
out:
	while (c->bl_count) {
		free(c->backlog[c->bl_head].data);
		c->bl_head = (c->bl_head + 1) % 256;
		c->bl_count--;
	}
	shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->nfds; i++)
		if (t->fds[i] == c->fd)
			t->fds[i] = -1;
	pthread_mutex_unlock(&t->lock);
	close(c->fd);
	atomic_fetch_sub(&t->conns_open, 1);
	free(c);
	return NULL;
}

static void *ft_accept_main(void *arg)
{
	struct fake_target *t = arg;
	while (!atomic_load(&t->stop)) {
		struct pollfd p = {t->lfd, POLLIN, 0};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(t->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct fake_conn *c = calloc(1, sizeof(*c));
		c->t = t;
		c->fd = fd;
		pthread_mutex_lock(&t->lock);
		int slot = -1;
		for (int i = 0; i < t->nfds; i++)
			if (t->fds[i] < 0)
				slot = i;
		if (slot < 0 && t->nfds < 64)
			slot = t->nfds++;
		if (slot >= 0)
			t->fds[slot] = fd;
		pthread_mutex_unlock(&t->lock);
		atomic_fetch_add(&t->conns_open, 1);
		pthread_t th;
		pthread_create(&th, NULL, ft_conn_main, c);
		pthread_detach(th);
	}
	return NULL;
}

static void ft_defaults(struct fake_target *t)
{
	memset(t, 0, sizeof(*t));
	t->block_size = 512;
	t->blocks = 2048;
	t->ioccsz = (8192 + 64) / 16;
	t->maxh2cdata = 65536;
	t->allow_dgst = 1;
}

static int ft_start(struct fake_target *t)
{
	pthread_mutex_init(&t->lock, NULL);
	t->storage = calloc(t->blocks, t->block_size);
	t->lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(t->lfd, (void *)&a, sizeof(a)) || listen(t->lfd, 64))
		return -1;
	socklen_t al = sizeof(a);
	getsockname(t->lfd, (void *)&a, &al);
	t->port = ntohs(a.sin_port);
	snprintf(t->addr, sizeof(t->addr), "127.0.0.1:%u", t->port);
	return pthread_create(&t->acceptor, NULL, ft_accept_main, t);
}

static void ft_stop(struct fake_target *t)
{
	atomic_store(&t->stop, 1);
	pthread_join(t->acceptor, NULL);
	close(t->lfd);
	ft_drop_all(t);
	for (int i = 0; i < 200 && atomic_load(&t->conns_open) > 0; i++)
		usleep(5000);
	free(t->storage);
}

#endif /* FAKE_TARGET_H */

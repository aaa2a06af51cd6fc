/*
 * The poll-group message queue of the message-based transports (nvmf_internal.h): functions
 * posted to a group run on the group's thread. Connection setup and teardown only.
 */
#include <stdlib.h>
#include "core_internal.h"
#include "nvmf_internal.h"

struct pg_msg {
	struct pg_msg *next;
	void (*fn)(void *arg);
	void *arg;
};

int pg_core_init(struct pg_core *pg, uint32_t index)
{
	pg->head = pg->tail = NULL;
	pg->index = index;
	pg->ctrlrs = NULL;
	return -pthread_mutex_init(&pg->lock, NULL);
}

void pg_core_fini(struct pg_core *pg)
{
	struct pg_msg *m = pg->head;
	while (m) {
		struct pg_msg *n = m->next;
		free(m);
		m = n;
	}
	pg->head = pg->tail = NULL;
	pthread_mutex_destroy(&pg->lock);
}

int pg_post(struct pg_core *pg, void (*fn)(void *arg), void *arg)
{
	struct pg_msg *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->fn = fn;
	m->arg = arg;
	pthread_mutex_lock(&pg->lock);
	if (pg->tail)
		pg->tail->next = m;
	else
		__atomic_store_n(&pg->head, m, __ATOMIC_RELEASE);
	pg->tail = m;
	pthread_mutex_unlock(&pg->lock);
	return 0;
}

int pg_core_drain(struct pg_core *pg)
{
	/* Unlocked peek: a message posted meanwhile is seen at the next poll. */
	if (!__atomic_load_n(&pg->head, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&pg->lock);
	struct pg_msg *m = pg->head;
	pg->head = pg->tail = NULL;
	pthread_mutex_unlock(&pg->lock);
	int n = 0;
	while (m) {
		struct pg_msg *next = m->next;
		m->fn(m->arg);
		free(m);
		m = next;
		n++;
	}
	return n;
}

/*
 * Deterministic error injection of the mock DMA engine: "the Nth transfer of a scope fails
 * with status S" rules and seeded random failures, both decided at submit time.
 */
#include <errno.h>
#include "mock_internal.h"

/* splitmix64: small, seedable, good enough to pick failures. */
static uint64_t prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#define ALL_FAILURES (((1u << FERRY_XFER_STATUS_COUNT) - 1) & ~(1u << FERRY_XFER_SUCCESS))

void mock_inject_init(struct mock_dev *dev, uint64_t seed, uint32_t ppm)
{
	pthread_mutex_init(&dev->inj_lock, NULL);
	dev->prng = seed;
	dev->ppm = ppm;
	/* From the argument string: every failure a transfer can see on its own. */
	dev->status_mask = ALL_FAILURES & ~(1u << FERRY_XFER_NOT_ATTEMPTED);
}

static struct mock_chan *find_chan(struct mock_dev *dev, uint32_t id)
{
	for (struct mock_chan *ch = dev->chans; ch; ch = ch->next)
		if (ch->id == id)
			return ch;
	return NULL;
}

enum ferry_xfer_status mock_inject_take(struct mock_dev *dev, void *chan)
{
	struct mock_chan *ch = chan;
	enum ferry_xfer_status st = FERRY_XFER_SUCCESS;
	pthread_mutex_lock(&dev->inj_lock);
	dev->nsub++;
	if (ch)
		ch->nsub++;
	for (uint32_t i = 0; i < dev->nrules; i++) {
		struct mock_rule *r = &dev->rules[i];
		uint64_t cnt;
		if (r->chan_id == FERRY_MOCK_CHAN_ANY)
			cnt = dev->nsub;
		else if (ch && ch->id == r->chan_id)
			cnt = ch->nsub;
		else
			continue;
		if (cnt != r->target)
			continue;
		if (st == FERRY_XFER_SUCCESS)
			st = (enum ferry_xfer_status)r->status;
		dev->rules[i--] = dev->rules[--dev->nrules]; /* fired: remove */
	}
	if (dev->ppm) {
		uint64_t draw = prng_next(&dev->prng);
		if (draw % 1000000u < dev->ppm && st == FERRY_XFER_SUCCESS) {
			uint32_t n = (uint32_t)__builtin_popcount(dev->status_mask);
			uint32_t pick = (uint32_t)(prng_next(&dev->prng) % n);
			for (uint32_t s = 1; s < FERRY_XFER_STATUS_COUNT; s++)
				if ((dev->status_mask & (1u << s)) && pick-- == 0) {
					st = (enum ferry_xfer_status)s;
					break;
				}
		}
	}
	pthread_mutex_unlock(&dev->inj_lock);
	return st;
}

FERRY_API int ferry_mock_inject_nth(struct ferry_device *fdev, uint32_t chan_id, uint64_t nth,
				    enum ferry_xfer_status status)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev) {
		MOCK_ERR("inject_nth: not a mock device");
		return -EINVAL;
	}
	if (nth == 0 || status <= FERRY_XFER_SUCCESS || status >= FERRY_XFER_STATUS_COUNT) {
		MOCK_ERR("inject_nth: nth must be >= 1 (got %llu) and status a failure (got %d)",
			 (unsigned long long)nth, (int)status);
		return -EINVAL;
	}
	int rc = 0;
	pthread_mutex_lock(&dev->lock); /* channel list */
	pthread_mutex_lock(&dev->inj_lock);
	if (dev->nrules == MOCK_MAX_RULES) {
		MOCK_ERR("inject_nth: %u rules already armed", MOCK_MAX_RULES);
		rc = -ENOSPC;
	} else {
		uint64_t base = dev->nsub;
		if (chan_id != FERRY_MOCK_CHAN_ANY) {
			struct mock_chan *ch = find_chan(dev, chan_id);
			base = ch ? ch->nsub : 0; /* not created yet: counts from its first */
		}
		dev->rules[dev->nrules++] = (struct mock_rule){.chan_id = chan_id,
							       .target = base + nth,
							       .status = (uint8_t)status};
	}
	pthread_mutex_unlock(&dev->inj_lock);
	pthread_mutex_unlock(&dev->lock);
	return rc;
}

FERRY_API int ferry_mock_inject_random(struct ferry_device *fdev, uint32_t ppm,
				       uint32_t status_mask, uint64_t seed)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev) {
		MOCK_ERR("inject_random: not a mock device");
		return -EINVAL;
	}
	if (ppm > 1000000u || (ppm && (status_mask == 0 || (status_mask & ~ALL_FAILURES)))) {
		MOCK_ERR("inject_random: ppm %u must be <= 1000000 and status mask 0x%x a non-empty "
			 "set of failure statuses (0x%x)",
			 ppm, status_mask, ALL_FAILURES);
		return -EINVAL;
	}
	pthread_mutex_lock(&dev->inj_lock);
	dev->ppm = ppm;
	dev->status_mask = status_mask;
	dev->prng = seed;
	pthread_mutex_unlock(&dev->inj_lock);
	return 0;
}

FERRY_API int ferry_mock_inject_clear(struct ferry_device *fdev)
{
	struct mock_dev *dev = mock_dev_get(fdev);
	if (!dev) {
		MOCK_ERR("inject_clear: not a mock device");
		return -EINVAL;
	}
	pthread_mutex_lock(&dev->inj_lock);
	dev->nrules = 0;
	dev->ppm = 0;
	pthread_mutex_unlock(&dev->inj_lock);
	return 0;
}

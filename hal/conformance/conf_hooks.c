/*
 * The list of backend hook tables of the conformance suite (struct conf_hooks in conf.h). A
 * backend without an entry runs every generic check except those that need a host side
 * (host memory mapped through one of its PCIe function domains, host BAR accesses), which it
 * skips with the reason. --hooks NAME gives a derived backend the table of the one it is
 * derived from.
 */
#include "conf.h"

static const struct conf_hooks *const conf_all_hooks[] = {
	&conf_mock_hooks, /* conf_hooks_mock.c */
};

/* --hooks NAME: the table every check gets, whatever the backend under test is called. */
static const struct conf_hooks *conf_hooks_forced;

static const struct conf_hooks *by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(conf_all_hooks) / sizeof(conf_all_hooks[0]); i++)
		if (strcmp(conf_all_hooks[i]->backend, name) == 0)
			return conf_all_hooks[i];
	return NULL;
}

int conf_hooks_use(const char *name)
{
	conf_hooks_forced = by_name(name);
	return conf_hooks_forced ? 0 : -ENOENT;
}

const struct conf_hooks *conf_hooks_find(const char *name)
{
	return conf_hooks_forced ? conf_hooks_forced : by_name(name);
}

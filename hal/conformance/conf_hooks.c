/*
 * The list of backend hook tables of the conformance suite (struct conf_hooks in conf.h). A
 * backend without an entry runs every generic check except those that need host memory
 * mapped through one of its PCIe function domains, which it skips with the reason.
 */
#include "conf.h"

static const struct conf_hooks *const conf_all_hooks[] = {
	&conf_mock_hooks, /* conf_mock.c */
};

const struct conf_hooks *conf_hooks_find(const char *name)
{
	for (size_t i = 0; i < sizeof(conf_all_hooks) / sizeof(conf_all_hooks[0]); i++)
		if (strcmp(conf_all_hooks[i]->backend, name) == 0)
			return conf_all_hooks[i];
	return NULL;
}

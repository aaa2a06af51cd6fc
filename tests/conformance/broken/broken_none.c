/*
 * The control of the broken-backend tests: the mock derived through broken.h with nothing
 * replaced. It must pass every check the suite runs on it, so that a failure of another
 * broken_<x> is that plugin's one violation, not an artefact of the derivation.
 */
#include "broken.h"

static void brk(struct broken *b)
{
	(void)b;
}

BROKEN_BACKEND("broken_none", "", brk)

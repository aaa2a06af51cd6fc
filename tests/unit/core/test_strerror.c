/* ferry_strerror(): Ferry's meaning of the errnos it uses for something libc names otherwise
 * (PI mismatch, ABI mismatch, RDMA access refused, flushed work...), libc's text for the rest,
 * and the same answer for -errno and errno. */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <ferry/export.h>

Test(strerror, eilseq_is_a_pi_or_compare_mismatch)
{
	const char *s = ferry_strerror(-EILSEQ);
	cr_assert_str_eq(s, "data mismatch (Ferry: protection information (PI) guard/application/"
			    "reference tag check failed, or a compare found different data)");
	cr_assert_null(strstr(s, "multibyte"), "libc's EILSEQ text leaked: %s", s);
}

Test(strerror, context_dependent_codes_keep_the_libc_text_first)
{
	cr_assert_str_eq(ferry_strerror(-EPROTO),
			 "Protocol error (Ferry: ABI version mismatch of an ops table or plugin, "
			 "or malformed protocol data from the peer)");
	cr_assert_str_eq(ferry_strerror(-EREMOTEIO),
			 "Remote I/O error (Ferry: the RDMA peer refused the access: bad key, out "
			 "of bounds or no permission)");
	cr_assert_str_eq(ferry_strerror(-ECANCELED),
			 "Operation canceled (Ferry: flushed: its channel, queue or QP was "
			 "destroyed or failed before it ran)");
	cr_assert_str_eq(
		ferry_strerror(-EMSGSIZE),
		"Message too long (Ferry: the posted receive is too small for the message)");
	cr_assert_str_eq(ferry_strerror(-EFAULT),
			 "Bad address (Ferry: an address not mapped or not permitted for the "
			 "device, e.g. an IOMMU fault)");
	cr_assert(strncmp(ferry_strerror(-ENOBUFS), "No buffer space available (Ferry: ", 34) == 0,
		  "%s", ferry_strerror(-ENOBUFS));
	cr_assert_not_null(strstr(ferry_strerror(-ENOBUFS), "receiver not ready"));
	cr_assert(strncmp(ferry_strerror(-ENOTSUP), "Operation not supported (Ferry: ", 32) == 0,
		  "%s", ferry_strerror(-ENOTSUP));
}

Test(strerror, other_codes_are_libc_text)
{
	cr_assert_str_eq(ferry_strerror(-EINVAL), "Invalid argument");
	cr_assert_str_eq(ferry_strerror(-ENOMEM), "Cannot allocate memory");
	cr_assert_str_eq(ferry_strerror(-EAGAIN), "Resource temporarily unavailable");
}

Test(strerror, positive_and_negative_give_the_same_text)
{
	int codes[] = {EILSEQ, EPROTO, EREMOTEIO, ENOBUFS, EINVAL, ETIMEDOUT};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		cr_assert_str_eq(ferry_strerror(codes[i]), ferry_strerror(-codes[i]), "errno %d",
				 codes[i]);
	cr_assert_str_eq(ferry_strerror(0), "success");
}

Test(strerror, out_of_range_is_unknown_never_null)
{
	cr_assert_str_eq(ferry_strerror(-100000), "unknown error");
	cr_assert_str_eq(ferry_strerror(INT_MIN), "unknown error");
	cr_assert_str_eq(ferry_strerror(INT_MAX), "unknown error");
}

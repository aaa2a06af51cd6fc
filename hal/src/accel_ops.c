/*
 * The operand-use table of the accel opcodes (ferry/hal/accel.h, ferry_hal_accel_op_get_info()):
 * the one table behind the SDK's sequence passes (sdk/src/accel plans with it) and the
 * backends' engines, so that which operands an op reads and writes is written down once.
 */
#include <ferry/hal/accel.h>

#define S FERRY_HAL_ACCEL_OPND_SRC
#define D FERRY_HAL_ACCEL_OPND_DST
#define A FERRY_HAL_ACCEL_OPND_AUX

static const struct ferry_hal_accel_op_info op_info[FERRY_ACCEL_OP_COUNT] = {
	[FERRY_ACCEL_OP_COPY] = {"copy", S, D},
	[FERRY_ACCEL_OP_FILL] = {"fill", 0, D},
	[FERRY_ACCEL_OP_COMPARE] = {"compare", S | A, 0},
	[FERRY_ACCEL_OP_CRC32C] = {"crc32c", S, 0},
	[FERRY_ACCEL_OP_COPY_CRC32C] = {"copy-crc32c", S, D},
	[FERRY_ACCEL_OP_ENCRYPT] = {"encrypt", S, D},
	[FERRY_ACCEL_OP_DECRYPT] = {"decrypt", S, D},
	[FERRY_ACCEL_OP_DIF_GENERATE] = {"dif-generate", D, D}, /* in place */
	[FERRY_ACCEL_OP_DIF_VERIFY] = {"dif-verify", S, 0},
	[FERRY_ACCEL_OP_DIF_STRIP] = {"dif-strip", S, D},
	[FERRY_ACCEL_OP_DIF_INSERT] = {"dif-insert", S, D},
	[FERRY_ACCEL_OP_DIX_GENERATE] = {"dix-generate", S, A}, /* data read, metadata written */
	[FERRY_ACCEL_OP_DIX_VERIFY] = {"dix-verify", S | A, 0},
};

FERRY_API const struct ferry_hal_accel_op_info *ferry_hal_accel_op_get_info(enum ferry_accel_opcode op)
{
	if ((unsigned)op >= FERRY_ACCEL_OP_COUNT || !op_info[op].name)
		return NULL;
	return &op_info[op];
}

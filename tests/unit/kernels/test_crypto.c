/*
 * AES-XTS keys and kernels: IEEE 1619 (P1619/D16 annex B) known answers, key refusals,
 * scatter-gather round trips, data unit sizes, in-place operation, tweak carry, threads.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <ferry/crypto.h>
#include <ferry/log.h>
#include "kernels_internal.h"

/* ---- IEEE 1619 vectors: ciphertexts of 512-byte data units (hex) ------------------------ */
/* Vector 4: AES-128, key1 2718..., key2 3141..., DUSN 0, plaintext 00 01 .. ff 00 .. ff.
 * Vectors 5 and 6: same key, DUSN 1 and 2, plaintext = ciphertext of the previous vector.
 * Vectors 10-14: AES-256, DUSN ff, ffff, ffffff, ffffffff, ffffffffff, plaintext as vector 4. */
static const char ctx_v4[] = "27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c"
			     "c78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412"
			     "328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce"
			     "93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad0265"
			     "5ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8"
			     "a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f434"
			     "1332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c"
			     "5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e"
			     "94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc"
			     "1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3"
			     "e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344"
			     "b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd"
			     "74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752"
			     "afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203e"
			     "bb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18d"
			     "eb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568";

static const char ctx_v5[] = "264d3ca8512194fec312c8c9891f279fefdd608d0c027b60483a3fa811d65ee5"
			     "9d52d9e40ec5672d81532b38b6b089ce951f0f9c35590b8b978d175213f329bb"
			     "1c2fd30f2f7f30492a61a532a79f51d36f5e31a7c9a12c286082ff7d2394d18f"
			     "783e1a8e72c722caaaa52d8f065657d2631fd25bfd8e5baad6e527d763517501"
			     "c68c5edc3cdd55435c532d7125c8614deed9adaa3acade5888b87bef641c4c99"
			     "4c8091b5bcd387f3963fb5bc37aa922fbfe3df4e5b915e6eb514717bdd2a7407"
			     "9a5073f5c4bfd46adf7d282e7a393a52579d11a028da4d9cd9c77124f9648ee3"
			     "83b1ac763930e7162a8d37f350b2f74b8472cf09902063c6b32e8c2d9290cefb"
			     "d7346d1c779a0df50edcde4531da07b099c638e83a755944df2aef1aa31752fd"
			     "323dcb710fb4bfbb9d22b925bc3577e1b8949e729a90bbafeacf7f7879e7b114"
			     "7e28ba0bae940db795a61b15ecf4df8db07b824bb062802cc98a9545bb2aaeed"
			     "77cb3fc6db15dcd7d80d7d5bc406c4970a3478ada8899b329198eb61c193fb62"
			     "75aa8ca340344a75a862aebe92eee1ce032fd950b47d7704a3876923b4ad6284"
			     "4bf4a09c4dbe8b4397184b7471360c9564880aedddb9baa4af2e75394b08cd32"
			     "ff479c57a07d3eab5d54de5f9738b8d27f27a9f0ab11799d7b7ffefb2704c95c"
			     "6ad12c39f1e867a4b7b1d7818a4b753dfd2a89ccb45e001a03a867b187f225dd";

static const char ctx_v6[] = "fa762a3680b76007928ed4a4f49a9456031b704782e65e16cecb54ed7d017b5e"
			     "18abd67b338e81078f21edb7868d901ebe9c731a7c18b5e6dec1d6a72e078ac9"
			     "a4262f860beefa14f4e821018272e411a951502b6e79066e84252c3346f3aa62"
			     "344351a291d4bedc7a07618bdea2af63145cc7a4b8d4070691ae890cd65733e7"
			     "946e9021a1dffc4c59f159425ee6d50ca9b135fa6162cea18a939838dc000fb3"
			     "86fad086acce5ac07cb2ece7fd580b00cfa5e98589631dc25e8e2a3daf2ffdec"
			     "26531659912c9d8f7a15e5865ea8fb5816d6207052bd7128cd743c12c8118791"
			     "a4736811935eb982a532349e31dd401e0b660a568cb1a4711f552f55ded59f1f"
			     "15bf7196b3ca12a91e488ef59d64f3a02bf45239499ac6176ae321c4a211ec54"
			     "5365971c5d3f4f09d4eb139bfdf2073d33180b21002b65cc9865e76cb24cd92c"
			     "874c24c18350399a936ab3637079295d76c417776b94efce3a0ef7206b151105"
			     "19655c956cbd8b2489405ee2b09a6b6eebe0c53790a12a8998378b33a5b71159"
			     "625f4ba49d2a2fdba59fbf0897bc7aabd8d707dc140a80f0f309f835d3da54ab"
			     "584e501dfa0ee977fec543f74186a802b9a37adb3e8291eca04d66520d229e60"
			     "401e7282bef486ae059aa70696e0e305d777140a7a883ecdcb69b9ff938e8a42"
			     "31864c69ca2c2043bed007ff3e605e014bcf518138dc3a25c5e236171a2d01d6";

static const char ctx_v10[] = "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
			      "5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
			      "5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
			      "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
			      "2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
			      "b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
			      "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
			      "583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
			      "84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
			      "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
			      "9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
			      "a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
			      "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
			      "645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
			      "1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
			      "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";

static const char ctx_v11[] = "77a31251618a15e6b92d1d66dffe7b50b50bad552305ba0217a610688eff7e11"
			      "e1d0225438e093242d6db274fde801d4cae06f2092c728b2478559df58e837c2"
			      "469ee4a4fa794e4bbc7f39bc026e3cb72c33b0888f25b4acf56a2a9804f1ce6d"
			      "3d6e1dc6ca181d4b546179d55544aa7760c40d06741539c7e3cd9d2f6650b201"
			      "3fd0eeb8c2b8e3d8d240ccae2d4c98320a7442e1c8d75a42d6e6cfa4c2eca179"
			      "8d158c7aecdf82490f24bb9b38e108bcda12c3faf9a21141c3613b58367f922a"
			      "aa26cd22f23d708dae699ad7cb40a8ad0b6e2784973dcb605684c08b8d6998c6"
			      "9aac049921871ebb65301a4619ca80ecb485a31d744223ce8ddc2394828d6a80"
			      "470c092f5ba413c3378fa6054255c6f9df4495862bbb3287681f931b687c888a"
			      "bf844dfc8fc28331e579928cd12bd2390ae123cf03818d14dedde5c0c24c8ab0"
			      "18bfca75ca096f2d531f3d1619e785f1ada437cab92e980558b3dce1474afb75"
			      "bfedbf8ff54cb2618e0244c9ac0d3c66fb51598cd2db11f9be39791abe447c63"
			      "094f7c453b7ff87cb5bb36b7c79efb0872d17058b83b15ab0866ad8a58656c5a"
			      "7e20dbdf308b2461d97c0ec0024a2715055249cf3b478ddd4740de654f75ca68"
			      "6e0d7345c69ed50cdc2a8b332b1f8824108ac937eb050585608ee734097fc090"
			      "54fbff89eeaeea791f4a7ab1f9868294a4f9e27b42af8100cb9d59cef9645803";

static const char ctx_v12[] = "e387aaa58ba483afa7e8eb469778317ecf4cf573aa9d4eac23f2cdf914e4e200"
			      "a8b490e42ee646802dc6ee2b471b278195d60918ececb44bf79966f83faba049"
			      "9298ebc699c0c8634715a320bb4f075d622e74c8c932004f25b41e361025b5a8"
			      "7815391f6108fc4afa6a05d9303c6ba68a128a55705d415985832fdeaae6c8e1"
			      "9110e84d1b1f199a2692119edc96132658f09da7c623efcec712537a3d94c0bf"
			      "5d7e352ec94ae5797fdb377dc1551150721adf15bd26a8efc2fcaad56881fa9e"
			      "62462c28f30ae1ceaca93c345cf243b73f542e2074a705bd2643bb9f7cc79bb6"
			      "e7091ea6e232df0f9ad0d6cf502327876d82207abf2115cdacf6d5a48f6c1879"
			      "a65b115f0f8b3cb3c59d15dd8c769bc014795a1837f3901b5845eb491adfefe0"
			      "97b1fa30a12fc1f65ba22905031539971a10f2f36c321bb51331cdefb39e3964"
			      "c7ef079994f5b69b2edd83a71ef549971ee93f44eac3938fcdd61d01fa71799d"
			      "a3a8091c4c48aa9ed263ff0749df95d44fef6a0bb578ec69456aa5408ae32c7a"
			      "f08ad7ba8921287e3bbee31b767be06a0e705c864a769137df28292283ea81a2"
			      "480241b44d9921cdbec1bc28dc1fda114bd8e5217ac9d8ebafa720e9da4f9ace"
			      "231cc949e5b96fe76ffc21063fddc83a6b8679c00d35e09576a875305bed5f36"
			      "ed242c8900dd1fa965bc950dfce09b132263a1eef52dd6888c309f5a7d712826";

static const char ctx_v13[] = "bf53d2dade78e822a4d949a9bc6766b01b06a8ef70d26748c6a7fc36d80ae4c5"
			      "520f7c4ab0ac8544424fa405162fef5a6b7f229498063618d39f0003cb5fb8d1"
			      "c86b643497da1ff945c8d3bedeca4f479702a7a735f043ddb1d6aaade3c4a0ac"
			      "7ca7f3fa5279bef56f82cd7a2f38672e824814e10700300a055e1630b8f1cb0e"
			      "919f5e942010a416e2bf48cb46993d3cb6a51c19bacf864785a00bc2ecff15d3"
			      "50875b246ed53e68be6f55bd7e05cfc2b2ed6432198a6444b6d8c247fab941f5"
			      "69768b5c429366f1d3f00f0345b96123d56204c01c63b22ce78baf116e525ed9"
			      "0fdea39fa469494d3866c31e05f295ff21fea8d4e6e13d67e47ce722e9698a1c"
			      "1048d68ebcde76b86fcf976eab8aa9790268b7068e017a8b9b749409514f1053"
			      "027fd16c3786ea1bac5f15cb79711ee2abe82f5cf8b13ae73030ef5b9e4457e7"
			      "5d1304f988d62dd6fc4b94ed38ba831da4b7634971b6cd8ec325d9c61c00f1df"
			      "73627ed3745a5e8489f3a95c69639c32cd6e1d537a85f75cc844726e8a72fc00"
			      "77ad22000f1d5078f6b866318c668f1ad03d5a5fced5219f2eabbd0aa5c0f460"
			      "d183f04404a0d6f469558e81fab24a167905ab4c7878502ad3e38fdbe62a4155"
			      "6cec37325759533ce8f25f367c87bb5578d667ae93f9e2fd99bcbc5f2fbba88c"
			      "f6516139420fcff3b7361d86322c4bd84c82f335abb152c4a93411373aaa8220";

static const char ctx_v14[] = "64497e5a831e4a932c09be3e5393376daa599548b816031d224bbf50a818ed23"
			      "50eae7e96087c8a0db51ad290bd00c1ac1620857635bf246c176ab463be30b80"
			      "8da548081ac847b158e1264be25bb0910bbc92647108089415d45fab1b3d2604"
			      "e8a8eff1ae4020cfa39936b66827b23f371b92200be90251e6d73c5f86de5fd4"
			      "a950781933d79a28272b782a2ec313efdfcc0628f43d744c2dc2ff3dcb66999b"
			      "50c7ca895b0c64791eeaa5f29499fb1c026f84ce5b5c72ba1083cddb5ce45434"
			      "631665c333b60b11593fb253c5179a2c8db813782a004856a1653011e93fb6d8"
			      "76c18366dd8683f53412c0c180f9c848592d593f8609ca736317d356e13e2bff"
			      "3a9f59cd9aeb19cd482593d8c46128bb32423b37a9adfb482b99453fbe25a41b"
			      "f6feb4aa0bef5ed24bf73c762978025482c13115e4015aac992e5613a3b5c2f6"
			      "85b84795cb6e9b2656d8c88157e52c42f978d8634c43d06fea928f2822e465aa"
			      "6576e9bf419384506cc3ce3c54ac1a6f67dc66f3b30191e698380bc999b05abc"
			      "e19dc0c6dcc2dd001ec535ba18deb2df1a101023108318c75dc98611a09dc48a"
			      "0acdec676fabdf222f07e026f059b672b56e5cbc8e1d21bbd867dd9272120546"
			      "81d70ea737134cdfce93b6f82ae22423274e58a0821cc5502e2d0ab4585e94de"
			      "6975be5e0b4efce51cd3e70c25a1fbbbd609d273ad5b0d59631c531f6a0a57b9";

static const char key128_1[] = "27182818284590452353602874713526";
static const char key128_2[] = "31415926535897932384626433832795";
static const char key256_1[] = "2718281828459045235360287471352662497757247093699959574966967627";
static const char key256_2[] = "3141592653589793238462643383279502884197169399375105820974944592";

static void unhex(const char *h, uint8_t *out, size_t n)
{
	cr_assert_eq(strlen(h), 2 * n, "hex length %zu, want %zu", strlen(h), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert_eq(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void quiet_log(enum ferry_log_level l, const char *c, const char *f, va_list ap)
{
	(void)l;
	(void)c;
	(void)f;
	(void)ap;
}

static void setup(void)
{
	ferry_log_set_handler(quiet_log);
}

static struct ferry_crypto_key *make_key(enum ferry_cipher cipher, const char *k1, const char *k2,
					 uint32_t du)
{
	uint8_t a[32], b[32];
	size_t n = strlen(k1) / 2;
	unhex(k1, a, n);
	unhex(k2, b, n);
	struct ferry_crypto_key_opts o = {.size = sizeof(o),
					  .cipher = cipher,
					  .key1 = a,
					  .key2 = b,
					  .key_len = n,
					  .data_unit_size = du};
	struct ferry_crypto_key *key = NULL;
	cr_assert_eq(ferry_crypto_key_create(&o, &key), 0, "%s", ferry_last_error());
	cr_assert_not_null(key);
	return key;
}

static void pattern512(uint8_t *p)
{
	for (int i = 0; i < 512; i++)
		p[i] = (uint8_t)i;
}

/* Encrypt pt with the public API (one 512-byte data unit), compare, decrypt back. */
static void check_512(struct ferry_crypto_key *key, uint64_t tweak, const uint8_t *pt,
		      const char *ct_hex, const char *name)
{
	uint8_t ct[512], out[512], back[512];
	unhex(ct_hex, ct, sizeof(ct));
	struct iovec s = {(void *)pt, 512}, d = {out, 512};
	cr_assert_eq(ferry_crypto_encrypt(key, &d, 1, &s, 1, tweak), 0);
	cr_assert_arr_eq(out, ct, 512, "%s: ciphertext differs", name);
	struct iovec s2 = {ct, 512}, d2 = {back, 512};
	cr_assert_eq(ferry_crypto_decrypt(key, &d2, 1, &s2, 1, tweak), 0);
	cr_assert_arr_eq(back, pt, 512, "%s: decrypt differs", name);
}

TestSuite(crypto, .init = setup);

Test(crypto, ieee1619_vector1_equal_keys_refused)
{
	/* Vector 1 uses key1 == key2 == 0: exactly what XTS users must not do, refused. */
	uint8_t z[16] = {0};
	struct ferry_crypto_key_opts o = {.size = sizeof(o),
					  .cipher = FERRY_CIPHER_AES_XTS_128,
					  .key1 = z,
					  .key2 = z,
					  .key_len = 16,
					  .data_unit_size = 512};
	struct ferry_crypto_key *key = (struct ferry_crypto_key *)1;
	cr_assert_eq(ferry_crypto_key_create(&o, &key), -EINVAL);
	cr_assert_null(key);
	cr_assert(strstr(ferry_last_error(), "key1 equals key2") != NULL, "%s", ferry_last_error());
}

Test(crypto, ieee1619_vectors_2_3_short_units)
{
	static const struct {
		const char *k1, *k2, *ct;
	} v[] = {
		{"11111111111111111111111111111111", "22222222222222222222222222222222",
		 "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0"},
		{"fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0", "22222222222222222222222222222222",
		 "af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89"},
	};
	for (size_t i = 0; i < 2; i++) {
		struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, v[i].k1, v[i].k2,
							512);
		uint8_t pt[32], ct[32], out[32];
		memset(pt, 0x44, sizeof(pt));
		unhex(v[i].ct, ct, 32);
		cr_assert_eq(xts_crypt_unit(key, 1, out, pt, 32, 0x3333333333ull), 0);
		cr_assert_arr_eq(out, ct, 32, "vector %zu", i + 2);
		cr_assert_eq(xts_crypt_unit(key, 0, out, out, 32, 0x3333333333ull), 0);
		cr_assert_arr_eq(out, pt, 32, "vector %zu decrypt in place", i + 2);
		ferry_crypto_key_destroy(key);
	}
}

Test(crypto, ieee1619_vectors_4_5_6)
{
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	uint8_t pt[512], c4[512], c5[512];
	pattern512(pt);
	unhex(ctx_v4, c4, 512);
	unhex(ctx_v5, c5, 512);
	check_512(key, 0, pt, ctx_v4, "vector 4");
	check_512(key, 1, c4, ctx_v5, "vector 5");
	check_512(key, 2, c5, ctx_v6, "vector 6");
	ferry_crypto_key_destroy(key);
}

Test(crypto, ieee1619_vectors_4_5_6_as_one_sequence_scattered)
{
	/* Three data units in one call: tweak 0, 1, 2 -> the three vectors, through odd segments. */
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	uint8_t pt[1536], want[1536], out[1536];
	pattern512(pt);
	unhex(ctx_v4, pt + 512, 512);
	unhex(ctx_v5, pt + 1024, 512);
	memcpy(want, pt + 512, 1024);
	unhex(ctx_v6, want + 1024, 512);
	struct iovec s[4] = {{pt, 100}, {pt + 100, 700}, {pt + 800, 0}, {pt + 800, 736}};
	struct iovec d[3] = {{out, 511}, {out + 511, 514}, {out + 1025, 511}};
	cr_assert_eq(ferry_crypto_encrypt(key, d, 3, s, 4, 0), 0);
	cr_assert_arr_eq(out, want, sizeof(want));
	ferry_crypto_key_destroy(key);
}

Test(crypto, ieee1619_vectors_10_to_14_aes256)
{
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_256, key256_1, key256_2, 512);
	uint8_t pt[512];
	pattern512(pt);
	check_512(key, 0xffull, pt, ctx_v10, "vector 10");
	check_512(key, 0xffffull, pt, ctx_v11, "vector 11");
	check_512(key, 0xffffffull, pt, ctx_v12, "vector 12");
	check_512(key, 0xffffffffull, pt, ctx_v13, "vector 13");
	check_512(key, 0xffffffffffull, pt, ctx_v14, "vector 14");
	cr_assert_eq(ferry_crypto_key_get_cipher(key), FERRY_CIPHER_AES_XTS_256);
	cr_assert_eq(ferry_crypto_key_get_data_unit(key), 512u);
	ferry_crypto_key_destroy(key);
}

Test(crypto, key_create_refusals)
{
	uint8_t a[32], b[32];
	memset(a, 0x11, sizeof(a));
	memset(b, 0x22, sizeof(b));
	struct ferry_crypto_key *key = NULL;
	const struct ferry_crypto_key_opts good = {.size = sizeof(good),
						   .cipher = FERRY_CIPHER_AES_XTS_128,
						   .key1 = a,
						   .key2 = b,
						   .key_len = 16,
						   .data_unit_size = 4096};
	struct ferry_crypto_key_opts o;
	cr_assert_eq(ferry_crypto_key_create(NULL, &key), -EINVAL);
	cr_assert_eq(ferry_crypto_key_create(&good, NULL), -EINVAL);
	o = good;
	o.size = 4;
	cr_assert_eq(ferry_crypto_key_create(&o, &key), -EINVAL);
	o = good;
	o.cipher = (enum ferry_cipher)7;
	cr_assert_eq(ferry_crypto_key_create(&o, &key), -EINVAL);
	const size_t bad_len128[] = {0, 15, 17, 24, 32};
	for (size_t i = 0; i < 5; i++) {
		o = good;
		o.key_len = bad_len128[i];
		cr_assert_eq(ferry_crypto_key_create(&o, &key), -EINVAL, "len %zu", bad_len128[i]);
	}
	o = good;
	o.cipher = FERRY_CIPHER_AES_XTS_256; /* 16-byte halves with the 256-bit cipher */
	cr_assert_eq(ferry_crypto_key_create(&o, &key), -EINVAL);
	const uint32_t bad_du[] = {0, 16, 511, 520, 1024, 2048, 4104, 8192};
	for (size_t i = 0; i < 8; i++) {
		o = good;
		o.data_unit_size = bad_du[i];
		cr_assert_eq(ferry_crypto_key_create(&o, &key), -EINVAL, "du %u", bad_du[i]);
	}
	o = good;
	o.key1 = NULL;
	cr_assert_eq(ferry_crypto_key_create(&o, &key), -EINVAL);
	o = good;
	o.key2 = a; /* equal halves */
	cr_assert_eq(ferry_crypto_key_create(&o, &key), -EINVAL);
	o = good;
	o.cipher = FERRY_CIPHER_AES_XTS_256;
	o.key_len = 32;
	o.key2 = a;
	cr_assert_eq(ferry_crypto_key_create(&o, &key), -EINVAL);
	/* Halves equal but for the last byte are fine. */
	uint8_t c[32];
	memcpy(c, a, 32);
	c[31] ^= 1;
	o.key2 = c;
	cr_assert_eq(ferry_crypto_key_create(&o, &key), 0);
	ferry_crypto_key_destroy(key);
	o = good;
	cr_assert_eq(ferry_crypto_key_create(&o, &key), 0);
	cr_assert_eq(ferry_crypto_key_get_cipher(key), FERRY_CIPHER_AES_XTS_128);
	cr_assert_eq(ferry_crypto_key_get_data_unit(key), 4096u);
	ferry_crypto_key_destroy(key);
	ferry_crypto_key_destroy(NULL);
	cr_assert_eq(ferry_crypto_key_get_data_unit(NULL), 0u);
}

Test(crypto, key_material_is_copied)
{
	uint8_t a[16], b[16], pt[512], c1[512], c2[512];
	memset(a, 0x5a, 16);
	memset(b, 0xa5, 16);
	pattern512(pt);
	struct ferry_crypto_key_opts o = {.size = sizeof(o),
					  .cipher = FERRY_CIPHER_AES_XTS_128,
					  .key1 = a,
					  .key2 = b,
					  .key_len = 16,
					  .data_unit_size = 512};
	struct ferry_crypto_key *k1, *k2;
	cr_assert_eq(ferry_crypto_key_create(&o, &k1), 0);
	memset(a, 0, 16); /* the caller wipes its copy: the key must not change */
	memset(a, 0x5a, 16);
	cr_assert_eq(ferry_crypto_key_create(&o, &k2), 0);
	memset(a, 0, 16);
	memset(b, 0, 16);
	struct iovec s = {pt, 512}, d1 = {c1, 512}, d2 = {c2, 512};
	cr_assert_eq(ferry_crypto_encrypt(k1, &d1, 1, &s, 1, 9), 0);
	cr_assert_eq(ferry_crypto_encrypt(k2, &d2, 1, &s, 1, 9), 0);
	cr_assert_arr_eq(c1, c2, 512);
	ferry_crypto_key_destroy(k1);
	ferry_crypto_key_destroy(k2);
}

Test(crypto, length_and_argument_errors)
{
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	static uint8_t a[2048], b[2048];
	struct iovec s = {a, 1024}, d = {b, 1024};
	struct iovec s_odd = {a, 1000}, d_odd = {b, 1000};
	struct iovec d_long = {b, 1536};
	struct iovec bad = {NULL, 512};
	cr_assert_eq(ferry_crypto_encrypt(NULL, &d, 1, &s, 1, 0), -EINVAL);
	cr_assert_eq(ferry_crypto_encrypt(key, &d_odd, 1, &s_odd, 1, 0), -EINVAL);
	cr_assert_eq(ferry_crypto_encrypt(key, &d_long, 1, &s, 1, 0), -EINVAL);
	cr_assert_eq(ferry_crypto_decrypt(key, &d, 1, &s_odd, 1, 0), -EINVAL);
	cr_assert_eq(ferry_crypto_encrypt(key, NULL, 1, &s, 1, 0), -EINVAL);
	cr_assert_eq(ferry_crypto_encrypt(key, &d, 1, NULL, 1, 0), -EINVAL);
	cr_assert_eq(ferry_crypto_encrypt(key, &bad, 1, &s, 1, 0), -EINVAL);
	/* Nothing written on refusal. */
	memset(b, 0xEE, sizeof(b));
	cr_assert_eq(ferry_crypto_encrypt(key, &d_long, 1, &s, 1, 0), -EINVAL);
	for (size_t i = 0; i < sizeof(b); i++)
		cr_assert_eq(b[i], 0xEE);
	/* Zero length is a no-op. */
	cr_assert_eq(ferry_crypto_encrypt(key, NULL, 0, NULL, 0, 0), 0);
	ferry_crypto_key_destroy(key);
}

/* Random segmentation of n bytes at p into at most max segments (zero-length ones included). */
static uint32_t random_sgl(uint8_t *p, size_t n, struct iovec *iov, uint32_t max)
{
	uint32_t cnt = 0;
	size_t off = 0;
	while (off < n && cnt < max - 1) {
		size_t len = (size_t)(rand() % 1500);
		if (rand() % 8 == 0)
			len = 0;
		if (len > n - off)
			len = n - off;
		iov[cnt].iov_base = p + off;
		iov[cnt].iov_len = len;
		cnt++;
		off += len;
	}
	iov[cnt].iov_base = p + off;
	iov[cnt].iov_len = n - off;
	return cnt + 1;
}

Test(crypto, random_sg_round_trips_match_flat)
{
	enum {
		N = 16384
	};
	static uint8_t pt[N], flat[N], sg[N], back[N];
	srand(11);
	for (size_t i = 0; i < N; i++)
		pt[i] = (uint8_t)rand();
	const enum ferry_cipher ciphers[] = {FERRY_CIPHER_AES_XTS_128, FERRY_CIPHER_AES_XTS_256};
	const uint32_t dus[] = {512, 4096};
	for (int ci = 0; ci < 2; ci++) {
		for (int di = 0; di < 2; di++) {
			struct ferry_crypto_key *key =
				ci == 0 ? make_key(ciphers[ci], key128_1, key128_2, dus[di])
					: make_key(ciphers[ci], key256_1, key256_2, dus[di]);
			const uint64_t tweak = 1000 + (uint64_t)rand();
			struct iovec fs = {pt, N}, fd = {flat, N};
			cr_assert_eq(ferry_crypto_encrypt(key, &fd, 1, &fs, 1, tweak), 0);
			cr_assert(memcmp(flat, pt, N) != 0);
			for (int round = 0; round < 25; round++) {
				struct iovec s[40], d[40];
				uint32_t sc = random_sgl(pt, N, s, 40);
				uint32_t dc = random_sgl(sg, N, d, 40);
				memset(sg, 0, N);
				cr_assert_eq(ferry_crypto_encrypt(key, d, dc, s, sc, tweak), 0);
				cr_assert_arr_eq(sg, flat, N, "cipher %d du %u round %d", ci,
						 dus[di], round);
				sc = random_sgl(sg, N, s, 40);
				dc = random_sgl(back, N, d, 40);
				cr_assert_eq(ferry_crypto_decrypt(key, d, dc, s, sc, tweak), 0);
				cr_assert_arr_eq(back, pt, N);
			}
			ferry_crypto_key_destroy(key);
		}
	}
}

Test(crypto, in_place_flat_and_scattered)
{
	enum {
		N = 8192
	};
	static uint8_t pt[N], flat[N], buf[N];
	srand(12);
	for (size_t i = 0; i < N; i++)
		pt[i] = (uint8_t)rand();
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	struct iovec fs = {pt, N}, fd = {flat, N};
	cr_assert_eq(ferry_crypto_encrypt(key, &fd, 1, &fs, 1, 77), 0);
	memcpy(buf, pt, N);
	struct iovec b = {buf, N};
	cr_assert_eq(ferry_crypto_encrypt(key, &b, 1, &b, 1, 77), 0);
	cr_assert_arr_eq(buf, flat, N);
	cr_assert_eq(ferry_crypto_decrypt(key, &b, 1, &b, 1, 77), 0);
	cr_assert_arr_eq(buf, pt, N);
	for (int round = 0; round < 20; round++) {
		struct iovec s[32];
		uint32_t sc = random_sgl(buf, N, s, 32);
		cr_assert_eq(ferry_crypto_encrypt(key, s, sc, s, sc, 77), 0);
		cr_assert_arr_eq(buf, flat, N, "round %d", round);
		/* Same bytes described with a different segmentation on each side. */
		struct iovec d[32];
		uint32_t dc = random_sgl(buf, N, d, 32);
		cr_assert_eq(ferry_crypto_decrypt(key, d, dc, s, sc, 77), 0);
		cr_assert_arr_eq(buf, pt, N, "round %d decrypt", round);
	}
	ferry_crypto_key_destroy(key);
}

Test(crypto, data_unit_4096_is_one_unit_per_4k)
{
	enum {
		N = 8192
	};
	static uint8_t pt[N], out[N], want[N];
	for (size_t i = 0; i < N; i++)
		pt[i] = (uint8_t)(i * 7);
	struct ferry_crypto_key *k4 = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 4096);
	struct ferry_crypto_key *k5 = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	cr_assert_eq(xts_crypt_unit(k4, 1, want, pt, 4096, 40), 0);
	cr_assert_eq(xts_crypt_unit(k4, 1, want + 4096, pt + 4096, 4096, 41), 0);
	struct iovec s = {pt, N}, d = {out, N};
	cr_assert_eq(ferry_crypto_encrypt(k4, &d, 1, &s, 1, 40), 0);
	cr_assert_arr_eq(out, want, N);
	/* With 512-byte units the same call gives different bytes after the first 512. */
	cr_assert_eq(ferry_crypto_encrypt(k5, &d, 1, &s, 1, 40), 0);
	cr_assert_arr_eq(out, want, 512);
	cr_assert(memcmp(out + 512, want + 512, 512) != 0);
	struct iovec odd = {pt, 512 * 3}, oddd = {out, 512 * 3};
	cr_assert_eq(ferry_crypto_encrypt(k4, &oddd, 1, &odd, 1, 0), -EINVAL);
	ferry_crypto_key_destroy(k4);
	ferry_crypto_key_destroy(k5);
}

Test(crypto, tweak_carries_into_the_high_half)
{
	/* Two units from tweak 2^64 - 1: the second uses tweak 2^64 (high 64 bits = 1). */
	uint8_t k[32], pt[1024], out[1024], want[1024];
	unhex(key128_1, k, 16);
	unhex(key128_2, k + 16, 16);
	for (int i = 0; i < 1024; i++)
		pt[i] = (uint8_t)(i ^ 0x5c);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t iv[16];
	int outl;
	for (int u = 0; u < 2; u++) {
		memset(iv, u == 0 ? 0xff : 0x00, 8);
		memset(iv + 8, 0, 8);
		if (u == 1)
			iv[8] = 1;
		cr_assert_eq(EVP_EncryptInit_ex(c, EVP_aes_128_xts(), NULL, k, iv), 1);
		cr_assert_eq(EVP_EncryptUpdate(c, want + 512 * u, &outl, pt + 512 * u, 512), 1);
	}
	EVP_CIPHER_CTX_free(c);
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	struct iovec s = {pt, 1024}, d = {out, 1024};
	cr_assert_eq(ferry_crypto_encrypt(key, &d, 1, &s, 1, UINT64_MAX), 0);
	cr_assert_arr_eq(out, want, 1024);
	ferry_crypto_key_destroy(key);
}

Test(crypto, wrong_tweak_or_key_does_not_decrypt)
{
	uint8_t pt[512], ct[512], out[512];
	pattern512(pt);
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	struct ferry_crypto_key *other = make_key(FERRY_CIPHER_AES_XTS_128, key128_2, key128_1,
						  512);
	struct iovec s = {pt, 512}, c = {ct, 512}, o = {out, 512};
	cr_assert_eq(ferry_crypto_encrypt(key, &c, 1, &s, 1, 5), 0);
	cr_assert_eq(ferry_crypto_decrypt(key, &o, 1, &c, 1, 6), 0);
	cr_assert(memcmp(out, pt, 512) != 0);
	cr_assert_eq(ferry_crypto_decrypt(other, &o, 1, &c, 1, 5), 0);
	cr_assert(memcmp(out, pt, 512) != 0);
	cr_assert_eq(ferry_crypto_decrypt(key, &o, 1, &c, 1, 5), 0);
	cr_assert_arr_eq(out, pt, 512);
	ferry_crypto_key_destroy(key);
	ferry_crypto_key_destroy(other);
}

/* Several threads share one key; each checks its results against a single-thread reference. */
struct thr_arg {
	struct ferry_crypto_key *key;
	const uint8_t *pt;
	const uint8_t *ref;
	int bad;
};

static void *thr_main(void *p)
{
	struct thr_arg *a = p;
	static _Thread_local uint8_t out[4096], back[4096];
	for (int i = 0; i < 300; i++) {
		struct iovec s = {(void *)a->pt, 4096}, d = {out, 4096};
		if (ferry_crypto_encrypt(a->key, &d, 1, &s, 1, 123) || memcmp(out, a->ref, 4096))
			a->bad++;
		struct iovec s2 = {out, 4096}, d2 = {back, 4096};
		if (ferry_crypto_decrypt(a->key, &d2, 1, &s2, 1, 123) || memcmp(back, a->pt, 4096))
			a->bad++;
	}
	return NULL;
}

Test(crypto, key_shared_by_threads)
{
	static uint8_t pt[4096], ref[4096];
	for (int i = 0; i < 4096; i++)
		pt[i] = (uint8_t)(i * 13 + 1);
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_256, key256_1, key256_2, 512);
	struct iovec s = {pt, 4096}, d = {ref, 4096};
	cr_assert_eq(ferry_crypto_encrypt(key, &d, 1, &s, 1, 123), 0);
	pthread_t t[4];
	struct thr_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct thr_arg){key, pt, ref, 0};
		cr_assert_eq(pthread_create(&t[i], NULL, thr_main, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(a[i].bad, 0, "thread %d saw %d wrong results", i, a[i].bad);
	}
	ferry_crypto_key_destroy(key);
}

/* ---- overlap between source and destination --------------------------------------------- */
Test(crypto, partial_overlap_is_refused_and_nothing_written)
{
	enum {
		N = 4096
	};
	static uint8_t buf[N + 1024], snap[N + 1024];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 5 + 3);
	memcpy(snap, buf, sizeof(buf));
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	/* dst one block, one data unit and one byte past src: each a partial overlap. */
	const size_t shifts[] = {16, 512, 1};
	for (size_t i = 0; i < 3; i++) {
		struct iovec s = {buf, 2048}, d = {buf + shifts[i], 2048};
		cr_assert_eq(ferry_crypto_encrypt(key, &d, 1, &s, 1, 0), -EINVAL, "shift %zu",
			     shifts[i]);
		cr_assert(strstr(ferry_last_error(), "overlap") != NULL, "%s", ferry_last_error());
		cr_assert_eq(ferry_crypto_decrypt(key, &s, 1, &d, 1, 0), -EINVAL, "shift %zu",
			     shifts[i]);
		cr_assert_arr_eq(buf, snap, sizeof(buf), "shift %zu: buffer changed", shifts[i]);
	}
	/* Scattered: the same bytes in a different order (two segments swapped) is an overlap. */
	struct iovec s2[2] = {{buf, 1024}, {buf + 1024, 1024}};
	struct iovec d2[2] = {{buf + 1024, 1024}, {buf, 1024}};
	cr_assert_eq(ferry_crypto_encrypt(key, d2, 2, s2, 2, 0), -EINVAL);
	cr_assert_arr_eq(buf, snap, sizeof(buf));
	/* The internal single-unit entry point too; exact in place stays allowed there. */
	cr_assert_eq(xts_crypt_unit(key, 1, buf + 16, buf, 512, 0), -EINVAL);
	cr_assert_arr_eq(buf, snap, sizeof(buf));
	cr_assert_eq(xts_crypt_unit(key, 1, buf, buf, 512, 0), 0);
	/* Adjacent (touching, not overlapping) buffers are fine. */
	struct iovec s3 = {buf, 1024}, d3 = {buf + 1024, 1024};
	cr_assert_eq(ferry_crypto_encrypt(key, &d3, 1, &s3, 1, 0), 0);
	ferry_crypto_key_destroy(key);
}

/* ---- the tweak ------------------------------------------------------------------------- */
/* Raw OpenSSL reference of one data unit with an explicit 16-byte IV. */
static void evp_unit(const uint8_t *k, int klen, const uint8_t iv[16], const uint8_t *in,
		     uint8_t *out, int len)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int outl;
	cr_assert_eq(EVP_EncryptInit_ex(c, klen == 16 ? EVP_aes_128_xts() : EVP_aes_256_xts(),
					NULL, k, iv),
		     1);
	cr_assert_eq(EVP_EncryptUpdate(c, out, &outl, in, len), 1);
	EVP_CIPHER_CTX_free(c);
}

Test(crypto, tweak_bytes_are_little_endian_128bit)
{
	uint8_t k[32], pt[512], out[512], want[512];
	unhex(key128_1, k, 16);
	unhex(key128_2, k + 16, 16);
	pattern512(pt);
	const uint8_t iv[16] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
	evp_unit(k, 16, iv, pt, want, 512);
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	struct iovec s = {pt, 512}, d = {out, 512};
	cr_assert_eq(ferry_crypto_encrypt(key, &d, 1, &s, 1, 0x0102030405060708ull), 0);
	cr_assert_arr_eq(out, want, 512);
	ferry_crypto_key_destroy(key);
}

Test(crypto, data_unit_smaller_than_block_uses_lba_times_units_per_block)
{
	/* A 4096-byte block at LBA 3 with 512-byte data units: tweak 3 * 8 = 24, unit j uses
	 * the IV LE128(24 + j); the block that follows (LBA 4) starts at 32. */
	enum {
		BS = 4096,
		DU = 512,
		LBA = 3
	};
	static uint8_t k[32], pt[2 * BS], out[2 * BS], want[2 * BS];
	unhex(key128_1, k, 16);
	unhex(key128_2, k + 16, 16);
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i * 11 + 7);
	for (unsigned j = 0; j < 2 * BS / DU; j++) {
		uint8_t iv[16] = {0};
		iv[0] = (uint8_t)(LBA * (BS / DU) + j);
		evp_unit(k, 16, iv, pt + j * DU, want + j * DU, DU);
	}
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, DU);
	struct iovec s = {pt, sizeof(pt)}, d = {out, sizeof(out)};
	cr_assert_eq(ferry_crypto_encrypt(key, &d, 1, &s, 1, (uint64_t)LBA * (BS / DU)), 0);
	cr_assert_arr_eq(out, want, sizeof(out));
	/* Block by block gives the same bytes. */
	memset(out, 0, sizeof(out));
	for (unsigned b = 0; b < 2; b++) {
		struct iovec sb = {pt + b * BS, BS}, db = {out + b * BS, BS};
		cr_assert_eq(ferry_crypto_encrypt(key, &db, 1, &sb, 1, (LBA + b) * (BS / DU)), 0);
	}
	cr_assert_arr_eq(out, want, sizeof(out));
	ferry_crypto_key_destroy(key);
}

/* ---- the two implementations ----------------------------------------------------------- */
/* Force impl for the keys created afterwards; skip when it is not available here. */
static void force_or_skip(enum xts_impl impl)
{
	int rc = xts_force_impl(impl);
	if (rc == -ENOTSUP)
		cr_skip_test("libgcrypt is not built in or not usable here");
	cr_assert_eq(rc, 0);
}

static void ieee_vectors_on(enum xts_impl impl)
{
	force_or_skip(impl);
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	cr_assert_eq(xts_key_impl(key), impl);
	uint8_t pt[512], c4[512], c5[512];
	pattern512(pt);
	unhex(ctx_v4, c4, 512);
	unhex(ctx_v5, c5, 512);
	check_512(key, 0, pt, ctx_v4, "vector 4");
	check_512(key, 1, c4, ctx_v5, "vector 5");
	check_512(key, 2, c5, ctx_v6, "vector 6");
	/* Scattered and in place, through the same key. */
	uint8_t buf[1536], want[1536];
	memcpy(buf, pt, 512);
	memcpy(buf + 512, c4, 512);
	memcpy(buf + 1024, c5, 512);
	memcpy(want, c4, 512);
	memcpy(want + 512, c5, 512);
	unhex(ctx_v6, want + 1024, 512);
	struct iovec s[3] = {{buf, 100}, {buf + 100, 1000}, {buf + 1100, 436}};
	struct iovec d[2] = {{buf, 700}, {buf + 700, 836}};
	cr_assert_eq(ferry_crypto_encrypt(key, d, 2, s, 3, 0), 0);
	cr_assert_arr_eq(buf, want, sizeof(buf));
	ferry_crypto_key_destroy(key);

	key = make_key(FERRY_CIPHER_AES_XTS_256, key256_1, key256_2, 512);
	cr_assert_eq(xts_key_impl(key), impl);
	check_512(key, 0xffull, pt, ctx_v10, "vector 10");
	check_512(key, 0xffffull, pt, ctx_v11, "vector 11");
	check_512(key, 0xffffffull, pt, ctx_v12, "vector 12");
	check_512(key, 0xffffffffull, pt, ctx_v13, "vector 13");
	check_512(key, 0xffffffffffull, pt, ctx_v14, "vector 14");
	ferry_crypto_key_destroy(key);

	key = make_key(FERRY_CIPHER_AES_XTS_128, "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0",
		       "22222222222222222222222222222222", 4096);
	uint8_t p32[32], c32[32], o32[32];
	memset(p32, 0x44, sizeof(p32));
	unhex("af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89", c32, 32);
	cr_assert_eq(xts_crypt_unit(key, 1, o32, p32, 32, 0x3333333333ull), 0);
	cr_assert_arr_eq(o32, c32, 32, "vector 3");
	cr_assert_eq(xts_crypt_unit(key, 0, o32, o32, 32, 0x3333333333ull), 0);
	cr_assert_arr_eq(o32, p32, 32, "vector 3 decrypt in place");
	ferry_crypto_key_destroy(key);
}

Test(crypto, ieee1619_vectors_on_openssl)
{
	ieee_vectors_on(XTS_IMPL_OPENSSL);
}

Test(crypto, ieee1619_vectors_on_gcrypt)
{
	ieee_vectors_on(XTS_IMPL_GCRYPT);
}

Test(crypto, implementations_are_byte_identical)
{
	enum {
		N = 32768
	};
	static uint8_t pt[N], a[N], b[N];
	srand(21);
	for (size_t i = 0; i < N; i++)
		pt[i] = (uint8_t)rand();
	const enum ferry_cipher ciphers[] = {FERRY_CIPHER_AES_XTS_128, FERRY_CIPHER_AES_XTS_256};
	const uint32_t dus[] = {512, 4096};
	for (int ci = 0; ci < 2; ci++) {
		for (int di = 0; di < 2; di++) {
			const char *k1 = ci ? key256_1 : key128_1, *k2 = ci ? key256_2 : key128_2;
			const uint64_t tweak = UINT64_MAX - 3; /* crosses into the high half */
			force_or_skip(XTS_IMPL_OPENSSL);
			struct ferry_crypto_key *ko = make_key(ciphers[ci], k1, k2, dus[di]);
			force_or_skip(XTS_IMPL_GCRYPT);
			struct ferry_crypto_key *kg = make_key(ciphers[ci], k1, k2, dus[di]);
			cr_assert_eq(xts_key_impl(kg), XTS_IMPL_GCRYPT);
			struct iovec s = {pt, N}, da = {a, N}, db = {b, N};
			cr_assert_eq(ferry_crypto_encrypt(ko, &da, 1, &s, 1, tweak), 0);
			cr_assert_eq(ferry_crypto_encrypt(kg, &db, 1, &s, 1, tweak), 0);
			cr_assert_arr_eq(a, b, N, "encrypt cipher %d du %u", ci, dus[di]);
			/* Cross: what one encrypted, the other decrypts. */
			cr_assert_eq(ferry_crypto_decrypt(kg, &db, 1, &da, 1, tweak), 0);
			cr_assert_arr_eq(b, pt, N, "decrypt cipher %d du %u", ci, dus[di]);
			ferry_crypto_key_destroy(ko);
			ferry_crypto_key_destroy(kg);
		}
	}
}

Test(crypto, gcrypt_key_shared_by_threads)
{
	force_or_skip(XTS_IMPL_GCRYPT);
	static uint8_t pt[4096], ref[4096];
	for (int i = 0; i < 4096; i++)
		pt[i] = (uint8_t)(i * 13 + 1);
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_256, key256_1, key256_2, 512);
	struct iovec s = {pt, 4096}, d = {ref, 4096};
	cr_assert_eq(ferry_crypto_encrypt(key, &d, 1, &s, 1, 123), 0);
	pthread_t t[4];
	struct thr_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct thr_arg){key, pt, ref, 0};
		cr_assert_eq(pthread_create(&t[i], NULL, thr_main, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(a[i].bad, 0, "thread %d saw %d wrong results", i, a[i].bad);
	}
	ferry_crypto_key_destroy(key);
}

Test(crypto, auto_choice_is_measured_and_used)
{
	double go = -1, gg = -1;
	enum xts_impl want = xts_auto_impl(FERRY_CIPHER_AES_XTS_128, 4096,
							      &go, &gg);
	cr_assert(want == XTS_IMPL_OPENSSL || want == XTS_IMPL_GCRYPT);
	if (xts_force_impl(XTS_IMPL_GCRYPT) == 0 && !getenv("FERRY_XTS_IMPL")) {
		/* Both measured; libgcrypt chosen only if it was the faster. */
		cr_assert(go > 0 && gg > 0, "openssl %.2f gcrypt %.2f GB/s", go, gg);
		cr_assert_eq(want == XTS_IMPL_GCRYPT, gg > go * 1.03);
	}
	cr_assert_eq(xts_force_impl(XTS_IMPL_AUTO), 0);
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 4096);
	cr_assert_eq(xts_key_impl(key), want);
	ferry_crypto_key_destroy(key);
	cr_assert_eq(xts_force_impl((enum xts_impl)9), -EINVAL);
}

Test(crypto, env_var_selects_the_implementation)
{
	/* Each Criterion test runs in its own process: the choice is not made yet. */
	setenv("FERRY_XTS_IMPL", "openssl", 1);
	struct ferry_crypto_key *key = make_key(FERRY_CIPHER_AES_XTS_256, key256_1, key256_2, 4096);
	cr_assert_eq(xts_key_impl(key), XTS_IMPL_OPENSSL);
	ferry_crypto_key_destroy(key);
	setenv("FERRY_XTS_IMPL", "gcrypt", 1);
	key = make_key(FERRY_CIPHER_AES_XTS_128, key128_1, key128_2, 512);
	enum xts_impl want = xts_force_impl(XTS_IMPL_GCRYPT) == 0
					   ? XTS_IMPL_GCRYPT
					   : XTS_IMPL_OPENSSL;
	cr_assert_eq(xts_key_impl(key), want);
	ferry_crypto_key_destroy(key);
	unsetenv("FERRY_XTS_IMPL");
}

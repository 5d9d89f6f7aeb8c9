/* bpf — eBPF programs assembled by kvnet itself and loaded with bpf(2).
 *
 * kvnet's programs are small and specialised per port (a VLAN id, a MAC, a few addresses,
 * an interface index are constants in the code), so they are assembled at run time from
 * C rather than compiled by clang into an ELF object: no BPF toolchain at build time, no
 * ELF loader (one parser less), no maps for per-port constants. The kernel's verifier
 * checks every program at load time as it would a compiled one.
 *
 *   struct bpf_asm a; bpf_asm_init(&a);
 *   bpf_mov_reg(&a, BPF_REG_6, BPF_REG_1);              r6 = ctx
 *   bpf_ldx(&a, BPF_W, BPF_REG_0, BPF_REG_6, off);       r0 = *(u32 *)(r6 + off)
 *   bpf_jmp32_imm(&a, BPF_JNE, BPF_REG_0, 0, L_DROP);     if w0 != 0 goto drop
 *   ...
 *   bpf_label(&a, L_DROP); bpf_ret(&a, TC_ACT_SHOT);
 *   bpf_prog_load_cls(&a, "kvnet_x", &fd, &e);            fixes the jumps, loads
 *
 * Labels are small integers (0 .. BPF_ASM_LABELS-1) placed once; a jump may name a label
 * placed later. Building never fails half-way silently: the first error (too many
 * instructions, a label placed twice or never, a jump out of range) is kept and reported
 * by bpf_asm_finish / bpf_prog_load_cls.
 *
 * bpf_prog_test_run runs a loaded program on a packet (BPF_PROG_TEST_RUN) and returns its
 * verdict and the packet as the program left it: the unit of the programs' tests.
 */
#ifndef KVNET_NET_BPF_H
#define KVNET_NET_BPF_H

#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>

struct err;

#define BPF_ASM_MAX 1024   /* instructions per program */
#define BPF_ASM_LABELS 128 /* label ids per program */
#define BPF_ASM_FIXUPS 512 /* jumps to labels per program */

struct bpf_asm {
	struct bpf_insn insn[BPF_ASM_MAX];   /* the program */
	unsigned n;                          /* instructions so far */
	int label[BPF_ASM_LABELS];           /* instruction index of each label, -1 unset */
	struct {
		unsigned at;                 /* the jump instruction */
		unsigned label;              /* its target */
	} fix[BPF_ASM_FIXUPS];
	unsigned nfix;                       /* jumps to fix */
	int err;                             /* first error (-errno), 0 */
	char why[96];                        /* what it was */
};

void bpf_asm_init(struct bpf_asm *a);

/* ALU (64-bit): dst = imm / dst = src / dst OP= imm / dst OP= src (BPF_ADD, BPF_AND,
 * BPF_LSH, BPF_RSH, ...). */
void bpf_mov_imm(struct bpf_asm *a, int dst, int32_t imm);
void bpf_mov_reg(struct bpf_asm *a, int dst, int src);
void bpf_alu_imm(struct bpf_asm *a, int op, int dst, int32_t imm);
void bpf_alu_reg(struct bpf_asm *a, int op, int dst, int src);
/* dst = *(size *)(src + off); *(size *)(dst + off) = src; *(size *)(dst + off) = imm.
 * size: BPF_B, BPF_H, BPF_W, BPF_DW. */
void bpf_ldx(struct bpf_asm *a, int size, int dst, int src, int16_t off);
void bpf_stx(struct bpf_asm *a, int size, int dst, int src, int16_t off);
void bpf_st_imm(struct bpf_asm *a, int size, int dst, int16_t off, int32_t imm);
/* if (dst OP imm) goto label, comparing the low 32 bits (BPF_JMP32: BPF_JEQ, BPF_JNE,
 * BPF_JGT, BPF_JSET, ...); the 64-bit form; goto label. */
void bpf_jmp32_imm(struct bpf_asm *a, int op, int dst, int32_t imm, unsigned label);
void bpf_jmp_imm(struct bpf_asm *a, int op, int dst, int32_t imm, unsigned label);
void bpf_jmp_reg(struct bpf_asm *a, int op, int dst, int src, unsigned label);
void bpf_ja(struct bpf_asm *a, unsigned label);
/* call helper fn (BPF_FUNC_*); r0 = its result, r1-r5 clobbered. */
void bpf_call(struct bpf_asm *a, int fn);
/* r0 = v; exit. / exit with r0 as it is. */
void bpf_ret(struct bpf_asm *a, int32_t v);
void bpf_exit(struct bpf_asm *a);
/* dst = the 16-bit value in dst's low half read as big-endian (network order) bytes,
 * i.e. ntohs of a u16 loaded from a packet. */
void bpf_be16(struct bpf_asm *a, int dst);
/* Place label here. */
void bpf_label(struct bpf_asm *a, unsigned label);

/* The 32-bit immediate that a load of n (1, 2 or 4) bytes from memory holding p[0..n)
 * gives on this machine (so constants compare with loaded packet bytes whatever the
 * byte order). */
int32_t bpf_imm_bytes(const uint8_t *p, size_t n);

/* Resolve the jumps. 0, or the first error of the build (e says what). */
int bpf_asm_finish(struct bpf_asm *a, struct err *e);

/* Finish a and load it as a BPF_PROG_TYPE_SCHED_CLS program named name (up to 15
 * characters, shown by `tc filter show` and bpftool). *fd is the program; close it when
 * it is attached (the attachment keeps it). On a verifier refusal e holds the verifier's
 * last lines. 0 or -errno. */
int bpf_prog_load_cls(struct bpf_asm *a, const char *name, int *fd, struct err *e);

struct bpf_test_out {
	uint32_t retval;     /* what the program returned (TC_ACT_*) */
	uint8_t data[1600];  /* the packet after the program */
	uint32_t len;        /* its length */
};

/* Run program fd once on the len bytes of pkt (an Ethernet frame). 0 or -errno. */
int bpf_prog_test_run(int fd, const void *pkt, size_t len, struct bpf_test_out *out,
		      struct err *e);

#endif

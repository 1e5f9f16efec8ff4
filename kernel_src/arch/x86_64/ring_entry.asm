; ring_entry.asm - the ring crossings of arch/x86_64/ring.h: CPL3 -> ring 0
; through the #UD gates, ring 0 -> CPL3 with iretq (ring_user_call).
;
; A gate is a ud2 at one of the ring_gate_* addresses below, executed at
; CPL3: the #UD handler (ring_ud_entry, IDT vector 6) recognises the
; address and acts; any other #UD, or one at ring 0, is a fault and goes
; to the register dump (isr.asm). Under KVM's PVM flavour an exception is
; the only way up: `syscall` from CPL3 jumps to LSTAR but stays at CPL3
; (port I/O there raised #GP with CS 0x23 in the frame; measured in this
; runtime), sysretq ends in #GP and `int n` arrives as #UD (probe).
; Under TCG and hardware KVM a gate is an ordinary exception.

bits 64
default rel

%include "trap.inc"
%include "ring.inc"

extern _start_kernel, user_stack_top, isr_stub_6
global ring_ud_entry, ring_user_call, ring_enter_ring0, ring_gate_boot

section .data
align 8
ring_booted:    dq 0            ; the boot gate was taken (only once)
user_call_ksp:  dq 0            ; ring 0 rsp inside ring_user_call, 0 when none
gate_rip:       dq 0            ; scratch of the ring-0 gate (one CPU, IF=0)
gate_rsp:       dq 0

section .text
; #UD: [rsp] rip, cs, rflags, rsp, ss (no error code)
ring_ud_entry:
	test byte [rsp + 8], 3
	jz .fault                       ; at ring 0: a real #UD
	push rax
	lea rax, [ring_gate_return]
	cmp [rsp + 8], rax
	je .user_return
	lea rax, [ring_gate_ring0]
	cmp [rsp + 8], rax
	je .ring0
	lea rax, [ring_gate_boot]
	cmp [rsp + 8], rax
	je .boot
	pop rax
.fault:
	jmp isr_stub_6

.user_return:                       ; ring_user_call's function returned rax
	pop rax
	mov rsp, [user_call_ksp]
	test rsp, rsp
	jz .bad
	mov qword [user_call_ksp], 0
	pop r15
	pop r14
	pop r13
	pop r12
	pop rbp
	pop rbx
	ret
.ring0:                             ; go on at ring 0 after the ud2, same stack
	mov rax, [rsp + 8]
	add rax, 2
	mov [gate_rip], rax
	mov rax, [rsp + 8 + 24]
	mov [gate_rsp], rax
	pop rax
	mov rsp, [gate_rsp]
	jmp [gate_rip]
.boot:
	pop rax
	cmp qword [ring_booted], 0
	jne .bad
	mov qword [ring_booted], 1
	jmp _start_kernel
.bad:
	ud2                             ; at ring 0: dumped as a fault

; uint64_t ring_user_call(uint64_t (*fn)(uint64_t) rdi, uint64_t arg rsi)
ring_user_call:
	cmp qword [user_call_ksp], 0
	jne .nested
	push rbx
	push rbp
	push r12
	push r13
	push r14
	push r15
	mov [user_call_ksp], rsp
	lea rax, [user_stack_top - 8]   ; fn's return address: rsp + 8 16-aligned
	lea rdx, [ring_user_return]
	mov [rax], rdx
	push GDT_SEL_UDATA | 3
	push rax
	push RING_RFLAGS_USER
	push GDT_SEL_UCODE | 3
	push rdi
	mov rdi, rsi
	iretq
.nested:
	ud2

ring_user_return:                   ; CPL3: fn returned rax
ring_gate_return:
	ud2

; void ring_enter_ring0(void): called at CPL3, returns at ring 0
ring_enter_ring0:
ring_gate_ring0:
	ud2
	ret

; the .bss clear in _start (entry.asm) ends here: on to kmain at ring 0
ring_gate_boot:
	ud2

section .note.GNU-stack noalloc noexec nowrite progbits

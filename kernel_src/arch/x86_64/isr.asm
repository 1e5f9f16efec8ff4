; isr.asm - entry stubs for the 32 CPU exception vectors.
;
; Each stub makes the stack uniform (a 0 where the CPU pushes no error code,
; then the vector number), saves the general registers in the order of
; struct trap_frame (arch/x86_64/trap.h) and calls trap_dispatch(frame).
; isr_stub_table[] holds the 32 stub addresses for idt_init().
; Vectors with an error code: Intel SDM vol. 3A table 6-1 (8, 10-14, 17,
; 21) plus AMD's #VC (29) and #SX (30).

bits 64
default rel

extern trap_dispatch
global isr_stub_table, isr_stub_6

%macro isr_no_error 1
isr_stub_%1:
	push 0
	push %1
	jmp isr_common
%endmacro

%macro isr_with_error 1
isr_stub_%1:
	push %1
	jmp isr_common
%endmacro

section .text

isr_no_error   0
isr_no_error   1
isr_no_error   2
isr_no_error   3
isr_no_error   4
isr_no_error   5
isr_no_error   6
isr_no_error   7
isr_with_error 8
isr_no_error   9
isr_with_error 10
isr_with_error 11
isr_with_error 12
isr_with_error 13
isr_with_error 14
isr_no_error   15
isr_no_error   16
isr_with_error 17
isr_no_error   18
isr_no_error   19
isr_no_error   20
isr_with_error 21
isr_no_error   22
isr_no_error   23
isr_no_error   24
isr_no_error   25
isr_no_error   26
isr_no_error   27
isr_no_error   28
isr_with_error 29
isr_with_error 30
isr_no_error   31

; CPU frame (5 qwords) + error + vector + 15 registers = 22 qwords = 176
; bytes on a stack the CPU aligned to 16, so rsp is 16-aligned at the call.
isr_common:
	push rax
	push rbx
	push rcx
	push rdx
	push rsi
	push rdi
	push rbp
	push r8
	push r9
	push r10
	push r11
	push r12
	push r13
	push r14
	push r15
	cld
	mov rdi, rsp
	call trap_dispatch
	pop r15
	pop r14
	pop r13
	pop r12
	pop r11
	pop r10
	pop r9
	pop r8
	pop rbp
	pop rdi
	pop rsi
	pop rdx
	pop rcx
	pop rbx
	pop rax
	add rsp, 16                     ; vector and error code
	iretq

section .rodata
align 8
isr_stub_table:
%assign i 0
%rep 32
	dq isr_stub_%+i
%assign i i + 1
%endrep

section .note.GNU-stack noalloc noexec nowrite progbits

/*
 * banned.h: functions we never call (STYLE.md section 6). Include last in
 * every .c file.
 */
#ifndef LIB_BANNED_H
#define LIB_BANNED_H

#undef strcpy
#undef strcat
#undef strncpy
#undef strncat
#undef sprintf
#undef vsprintf
#undef gets
#undef strtok
#undef atoi
#undef atol
#undef alloca
#undef rand
#undef strerror
#undef gmtime
#undef localtime

#pragma GCC poison strcpy strcat strncpy strncat sprintf vsprintf gets strtok
#pragma GCC poison atoi atol alloca rand strerror gmtime localtime

#endif

#!/usr/bin/env python3
"""Check what a virtual enclave image imports and exports.

    check_enclave_symbols.py [--nm NM] [--allow REGEX]... [--expect-violations A,B] image.so

An enclave computes; it does not touch files, sockets or processes (docs/design.md §5).
Every undefined dynamic symbol of the image (``nm -D --undefined-only``) must match
the allowlist below (memory, strings, math, libcrypto's pure crypto, the C++
runtime, getrandom, mutexes) and none may match the denylist (file, socket,
process, environment and console calls). The image must export exactly one symbol,
veil_venclave_entry. Exit status 1 and a list of offenders otherwise.

With --expect-violations the check is inverted for a deliberately bad image: it
passes only if every listed symbol is reported as a violation.
"""

import argparse
import re
import subprocess
import sys

ENTRY_POINT = "veil_venclave_entry"

# Denied outright, with the reason printed. Checked before the allowlist.
DENY = [
    (r"(open|open64|openat|openat64|creat|creat64|fopen|fopen64|freopen|freopen64|fdopen|"
     r"read|write|pread|pread64|pwrite|pwrite64|readv|writev|preadv|pwritev|close|lseek|"
     r"lseek64|stat|stat64|fstat|fstat64|lstat|lstat64|fstatat|statx|__x?stat\w*|__fx?stat\w*|"
     r"access|faccessat|unlink|unlinkat|rename|renameat|mkdir|rmdir|opendir|fdopendir|readdir|"
     r"readdir64|closedir|fread|fwrite|fgets|fgetc|getc|getchar|fputs|fputc|putc|putchar|puts|"
     r"fscanf|scanf|getline|getdelim|fclose|fflush|fseek|ftell|rewind|tmpfile|mkstemp|mkostemp|"
     r"remove|truncate|ftruncate|sendfile|splice|copy_file_range|memfd_create|mmap|mmap64|munmap|"
     r"mprotect|mremap|madvise|ioctl|fcntl|fcntl64|dup|dup2|dup3|pipe|pipe2|chmod|chown|link|"
     r"symlink|readlink|realpath|chdir|getcwd|sync|fsync|fdatasync|perror|"
     r"printf|fprintf|vprintf|vfprintf|dprintf|vdprintf|__printf_chk|__fprintf_chk|"
     r"__vprintf_chk|__vfprintf_chk|__dprintf_chk|__isoc99_\w*scanf)", "file or console I/O"),
    (r"(socket|socketpair|connect|bind|listen|accept|accept4|send|sendto|sendmsg|sendmmsg|recv|"
     r"recvfrom|recvmsg|recvmmsg|shutdown|getsockopt|setsockopt|getaddrinfo|freeaddrinfo|"
     r"gethostbyname\w*|getnameinfo|poll|ppoll|select|pselect|epoll_\w+|inotify_\w+)", "network"),
    (r"(fork|vfork|clone|clone3|exec\w*|fexecve|system|popen|pclose|posix_spawn\w*|kill|"
     r"tgkill|raise|wait|waitpid|waitid|wait3|wait4|ptrace|exit|_exit|_Exit|atexit|"
     r"pthread_create|pthread_detach|pthread_join|prctl|setuid|setgid|chroot|syscall|"
     r"dlopen|dlmopen|dlsym|dlvsym|dlclose|getenv|secure_getenv|setenv|putenv|unsetenv|"
     r"shm_\w+|sem_open|mq_\w+|signal|sigaction|alarm)", "process, environment or signal"),
    (r"EVP_read_pw_string\w*|EVP_set_pw_prompt|BIO_\w+|PEM_\w+|\w+_fp|RAND_load_file|"
     r"RAND_write_file|OPENSSL_config|CONF_\w+|NCONF_\w+|ENGINE_\w+|OSSL_STORE_\w+|"
     r"OSSL_PROVIDER_load", "libcrypto call that reads files, terminals or modules"),
    (r"_ZSt4cout|_ZSt4cerr|_ZSt4clog|_ZSt3cin|_ZSt5wcout|_ZSt5wcerr|_ZSt4wcin|"
     r"_ZNSt8ios_base4Init\w*|\w*fstream\w*|\w*filebuf\w*|\w*basic_file\w*|"
     r"\w*random_device\w*|_ZNSt6thread\w*|\w*10filesystem\w*", "C++ I/O, threads or files"),
]

ALLOW = [
    # memory and strings
    r"(memcpy|memmove|memset|memcmp|memchr|memrchr|bcmp|bzero|explicit_bzero|"
    r"__memcpy_chk|__memmove_chk|__memset_chk|strlen|strnlen|strcmp|strncmp|strchr|strrchr|"
    r"strstr|strcpy|strncpy|stpcpy|__strcpy_chk|__strncpy_chk|__stpcpy_chk|strcat|strncat|"
    r"__strcat_chk|__strncat_chk|strtol|strtoul|strtoll|strtoull|strtod|strtof|strtold|"
    r"__isoc23_strto\w+|snprintf|vsnprintf|__snprintf_chk|__vsnprintf_chk|sprintf|"
    r"__sprintf_chk|vsprintf|__vsprintf_chk|qsort|bsearch|abs|labs|llabs)",
    # allocation
    r"(malloc|calloc|realloc|reallocarray|free|aligned_alloc|posix_memalign|memalign)",
    # math (libm), including glibc's *_finite aliases
    r"(sqrt|cbrt|exp|exp2|exp10|expm1|log|log2|log10|log1p|logb|pow|sin|cos|tan|sincos|asin|"
    r"acos|atan|atan2|sinh|cosh|tanh|asinh|acosh|atanh|erf|erfc|lgamma|tgamma|fabs|floor|ceil|"
    r"round|lround|llround|rint|lrint|llrint|nearbyint|trunc|fmod|remainder|remquo|fma|fmax|"
    r"fmin|fdim|frexp|ldexp|scalbn|scalbln|ilogb|modf|hypot|copysign|nextafter|nexttoward|nan)"
    r"[fl]?",
    r"__\w+_finite|__(isnan|isinf|finite|signbit|fpclassify)[fl]?",
    # compiler, libgcc, glibc runtime support
    r"__stack_chk_fail|__cxa_finalize|__gmon_start__|_ITM_deregisterTMCloneTable|"
    r"_ITM_registerTMCloneTable|__tls_get_addr|_Unwind_\w+|__(u?div|u?mod)ti3|__popcount\w+|"
    r"__cpu_indicator_init|__cpu_model|__cpu_features2|__errno_location|__assert_fail|abort|"
    r"getrandom|_setjmp|setjmp|__sigsetjmp|longjmp|_longjmp|siglongjmp|__longjmp_chk|"
    r"__libc_single_threaded",
    # mutexes and related thread-safety primitives (no thread creation)
    r"pthread_mutex_\w+|pthread_mutexattr_\w+|pthread_once|__pthread_key_create|"
    r"pthread_key_create|pthread_key_delete|pthread_getspecific|pthread_setspecific|"
    r"pthread_cond_\w+|pthread_rwlock_\w+|pthread_spin_\w+|pthread_self|pthread_equal|"
    r"sched_yield|_ZNSt18condition_variable\w+",
    # libcrypto: pure cryptography
    r"EVP_\w+|HMAC\w*|CMAC_\w+|CRYPTO_memcmp|CRYPTO_malloc|CRYPTO_zalloc|CRYPTO_free|"
    r"CRYPTO_clear_free|CRYPTO_realloc|OPENSSL_cleanse|OPENSSL_init_crypto|RAND_bytes|"
    r"RAND_priv_bytes|ERR_get_error|ERR_peek_error|ERR_peek_last_error|ERR_clear_error|"
    r"ERR_error_string_n|SHA(1|224|256|384|512)(_Init|_Update|_Final)?|BN_\w+|OSSL_PARAM_\w+|"
    r"EC_KEY_\w+|EC_GROUP_\w+|EC_POINT_\w+|ECDSA_\w+|ECDH_\w+|PKCS5_PBKDF2_HMAC\w*|"
    r"AES_\w+|CRYPTO_gcm128_\w+",
    # C++ runtime: new/delete, exceptions, RTTI, containers, strings, string streams
    r"_Zn[wa]\w+|_Zd[la]\w+|__cxa_\w+|__gxx_personality_v0|_ZSt9terminatev|"
    r"_ZSt\d+__throw_\w+|_ZTI\w+|_ZTV\w+|_ZTS\w+|_ZNSt\d+(exception|bad_alloc|"
    r"bad_array_new_length|runtime_error|logic_error|invalid_argument|out_of_range|"
    r"length_error|overflow_error|underflow_error|range_error|domain_error|bad_cast|"
    r"bad_function_call|system_error|bad_variant_access|bad_optional_access)\w*|"
    r"_ZNKSt\d+(exception|bad_alloc|runtime_error|logic_error|system_error|bad_cast)\w*|"
    r"_ZNSt\d+__exception_ptr\w*|_ZSt\d+(rethrow|current)_exception\w*|"
    r"_ZSt\d+_Rb_tree_\w+|_ZNSt8__detail\d+_(List|Hash)_node_base\w*|"
    r"_ZNKSt8__detail20_Prime_rehash_policy\w*|_ZSt11_Hash_bytes\w*|_ZSt15_Fnv_hash_bytes\w*|"
    r"_ZNSt7__cxx11\d+basic_(string|ostringstream|istringstream|stringstream|stringbuf)\w*|"
    r"_ZNKSt7__cxx11\d+basic_(string|ostringstream|istringstream|stringstream|stringbuf)\w*|"
    r"_ZNSt15basic_streambuf\w*|_ZNSo\w*|_ZNSi\w*|_ZNSolsE\w*|_ZSt16__ostream_insert\w*|"
    r"_ZNSt9basic_ios\w*|_ZNKSt9basic_ios\w*|_ZNSt8ios_base(C|D)\w*|_ZNSt6locale\w*|"
    r"_ZNKSt5ctype\w*|_ZSt9use_facet\w*|_ZSt9has_facet\w*|_ZNKSt7num_put\w*|"
    r"_ZSt\d+__ostream_insert\w*|_ZNSt6chrono3_V212steady_clock3nowEv|"
    r"_ZSt\d+__glibcxx_assert_fail\w*|_ZNSt\d+_Sp_make_shared_tag\w*|_ZSt7nothrow",
]

DENY_RE = [(re.compile(rf"^(?:{pattern})$"), why) for pattern, why in DENY]
ALLOW_RE = [re.compile(rf"^(?:{pattern})$") for pattern in ALLOW]


def dynamic_symbols(nm: str, image: str, kind: str):
    result = subprocess.run(
        [nm, "-D", f"--{kind}-only", image], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"check_enclave_symbols: '{nm}' failed on {image}: {result.stderr.strip()}")
    names = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if not fields:
            continue
        name = fields[-1].split("@", 1)[0]
        names.append((fields[-2] if len(fields) >= 2 else "", name))
    return names


def classify(name: str, extra_allow):
    for regex, why in DENY_RE:
        if regex.match(name):
            return f"FORBIDDEN: {name} ({why})"
    if any(regex.match(name) for regex in ALLOW_RE + extra_allow):
        return None
    return f"NOT ALLOWED: {name} (not on the enclave import allowlist)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image")
    parser.add_argument("--nm", default="nm")
    parser.add_argument("--allow", action="append", default=[], metavar="REGEX",
                        help="extra allowed symbol (full-match regex); cannot override the denylist")
    parser.add_argument("--expect-violations", default="", metavar="A,B",
                        help="pass only if each listed symbol is reported as a violation")
    args = parser.parse_args()
    extra = [re.compile(rf"^(?:{pattern})$") for pattern in args.allow]

    problems = {}
    imports = dynamic_symbols(args.nm, args.image, "undefined")
    for _, name in imports:
        verdict = classify(name, extra)
        if verdict:
            problems[name] = verdict
    exports = [name for kind, name in dynamic_symbols(args.nm, args.image, "defined")
               if kind not in ("A",)]
    for name in exports:
        if name != ENTRY_POINT:
            problems[name] = f"EXPORTED: {name} (an image exports only {ENTRY_POINT})"
    if ENTRY_POINT not in exports:
        problems[ENTRY_POINT] = f"MISSING: {ENTRY_POINT} is not exported"

    for line in sorted(problems.values()):
        print(line)

    if args.expect_violations:
        expected = [s for s in args.expect_violations.split(",") if s]
        missed = [s for s in expected if s not in problems]
        if missed:
            print(f"expected violations not reported: {', '.join(missed)}")
            return 1
        print(f"{args.image}: the expected violations were reported")
        return 0

    if problems:
        print(f"{args.image}: {len(problems)} symbol problem(s) in {len(imports)} imports")
        return 1
    print(f"{args.image}: {len(imports)} imports, all allowed; exports only {ENTRY_POINT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

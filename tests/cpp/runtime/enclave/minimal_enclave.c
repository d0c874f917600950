/* A C-only enclave: the generated trusted bridge compiles as C. */
#include "minimal_t.h"

int ecall_min_ping(int x)
{
    return x + 1;
}

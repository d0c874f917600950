/* Deliberately breaks the enclave rules (file and network calls) so the symbol
 * check can show it catches them. Built, never loaded. */
#include <stdio.h>
#include <sys/socket.h>

#include "minimal_t.h"

int ecall_min_ping(int x)
{
    FILE* f = fopen("/etc/hostname", "r");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (f)
        fclose(f);
    return x + s;
}

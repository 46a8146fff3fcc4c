/* libFuzzer target: config_load_buffer() on arbitrary bytes must never
 * crash, leak or read out of bounds; a loaded config is printed and freed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    config_t *cfg = NULL;
    char *err = NULL;

    if (!devnull) {
        log_setup(LOG_ERROR, LOG_TEXT);
        devnull = fopen("/dev/null", "w");
    }
    if (config_load_buffer("fuzz.yaml", (const char *)data, size, &cfg,
                           &err) == CONFIG_OK) {
        if (devnull)
            config_print(cfg, devnull);
        config_free(cfg);
    }
    free(err);
    return 0;
}

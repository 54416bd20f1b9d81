/* Small string and path checks shared by the spec builder's files (kept apart from spec.c so
 * that the step files call down into this one and never back into spec.c). */
#include "server/spec/spec_internal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

bool spec_has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* hull-oci entry point: see oci/oci.h for the command line. */

#include "oci/oci.h"

int main(int argc, char **argv)
{
    return oci_main(argc, argv);
}

/* Shim header for module.modulemap: the installed betanet.h is found on the include path
 * (-I <prefix>/include), so the module map need not know the install prefix. */
#include <betanet.h>

// The one place that lists the built-in backbones: including a backbone's header here
// runs its COCO_REGISTER_BACKBONE line. Add a new backbone's header below.
#include "coco/backbones/bert4rec.h"
#include "coco/backbones/gru4rec.h"
#include "coco/backbones/sasrec.h"

namespace coco {

// Referenced by BackboneRegistry::instance() so that the linker keeps this file.
void link_builtin_backbones() {}

}  // namespace coco

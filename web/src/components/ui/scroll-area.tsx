import * as React from "react";
import { cn } from "@/lib/utils";

/** A plain styled scroll container (no Radix: native scrolling, thin scrollbars). */
const ScrollArea = React.forwardRef<HTMLDivElement, React.HTMLAttributes<HTMLDivElement>>(
  ({ className, ...props }, ref) => (
    <div ref={ref} className={cn("scroll-thin overflow-y-auto overscroll-contain", className)} {...props} />
  ),
);
ScrollArea.displayName = "ScrollArea";

export { ScrollArea };

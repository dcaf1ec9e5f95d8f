import { useEffect, useRef } from "react";
import { cn } from "@/lib/utils";

/** Live level bars, driven by requestAnimationFrame (not React state). */
export function LevelMeter({
  read,
  bars = 12,
  className,
  label,
}: {
  read: () => number;
  bars?: number;
  className?: string;
  label: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let raf = 0;
    let smooth = 0;
    const tick = () => {
      const rms = read();
      // dBFS from −60 to −6 mapped onto 0..1
      const db = 20 * Math.log10(Math.max(rms, 1e-6));
      const v = Math.min(1, Math.max(0, (db + 60) / 54));
      smooth = v > smooth ? v : smooth * 0.85 + v * 0.15;
      const el = ref.current;
      if (el) {
        const lit = Math.round(smooth * bars);
        for (let i = 0; i < el.children.length; i++) {
          (el.children[i] as HTMLElement).dataset.on = i < lit ? "1" : "0";
        }
      }
      raf = requestAnimationFrame(tick);
    };
    raf = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(raf);
  }, [read, bars]);
  return (
    <div ref={ref} className={cn("flex h-4 items-end gap-[2px]", className)} role="meter" aria-label={label}>
      {Array.from({ length: bars }, (_, i) => (
        <span
          key={i}
          className="w-1 rounded-sm bg-muted-foreground/20 transition-colors duration-75 data-[on=1]:bg-current"
          style={{ height: `${30 + (70 * (i + 1)) / bars}%` }}
        />
      ))}
    </div>
  );
}

// The AudioWorkletGlobalScope, declared by hand (only what the worklets use).
declare const sampleRate: number;
declare const currentFrame: number;
declare function registerProcessor(
  name: string,
  ctor: new (options?: AudioWorkletNodeOptions) => AudioWorkletProcessorBase,
): void;
interface AudioWorkletProcessorBase {
  readonly port: MessagePort;
  process(inputs: Float32Array[][], outputs: Float32Array[][], parameters: Record<string, Float32Array>): boolean;
}
declare const AudioWorkletProcessor: {
  prototype: AudioWorkletProcessorBase;
  new (options?: AudioWorkletNodeOptions): AudioWorkletProcessorBase;
};

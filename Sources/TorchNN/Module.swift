import Torch

/// A neural-network building block with named parameters, buffers and sub-modules, as `torch.nn.Module`.
///
/// Names are registered explicitly, in order, so that dotted paths equal PyTorch `state_dict` keys
/// (`layer1.0.conv1.weight`, `bn1.running_mean`, …) and checkpoints map one-to-one. Subclasses store
/// their layers in typed properties and register them in `init`:
///
/// ```swift
/// final class Head: Module {
///   let fc: Linear
///   init() throws {
///     fc = try Linear(inFeatures: 512, outFeatures: 18)
///     super.init()
///     register("fc", fc)
///   }
///   override func forward(_ x: Tensor) throws -> Tensor { try fc(x) }
/// }
/// ```
open class Module {
  private var parameterEntries: [(name: String, tensor: Tensor)] = []
  private var bufferEntries: [(name: String, tensor: Tensor)] = []
  private var childEntries: [(name: String, module: Module)] = []

  /// Training mode (batch statistics, dropout) versus evaluation mode. Set with `train(_:)`.
  public private(set) var isTraining = true

  public init() {}

  // MARK: Registration

  /// Registers a trainable tensor under `name` and marks it as requiring gradients.
  @discardableResult
  public func registerParameter(_ name: String, _ tensor: Tensor) -> Tensor {
    precondition(!name.contains("."), "parameter names must not contain '.': \(name)")
    _ = try? tensor.requiringGrad(true)
    parameterEntries.append((name, tensor))
    return tensor
  }

  /// Registers a non-trainable tensor (e.g. running statistics) that belongs in the `state_dict`.
  @discardableResult
  public func registerBuffer(_ name: String, _ tensor: Tensor) -> Tensor {
    precondition(!name.contains("."), "buffer names must not contain '.': \(name)")
    bufferEntries.append((name, tensor))
    return tensor
  }

  /// Registers a sub-module under `name`; its entries appear as `name.<entry>`.
  @discardableResult
  public func register<M: Module>(_ name: String, _ module: M) -> M {
    precondition(!name.contains("."), "module names must not contain '.': \(name)")
    childEntries.append((name, module))
    return module
  }

  // MARK: Introspection

  /// Direct sub-modules in registration order.
  public var children: [(name: String, module: Module)] { childEntries }

  /// All parameters, depth first in registration order, with dotted names (as `named_parameters()`).
  public func namedParameters() -> [(name: String, tensor: Tensor)] {
    var out = parameterEntries
    for (childName, child) in childEntries {
      out += child.namedParameters().map { ("\(childName).\($0.name)", $0.tensor) }
    }
    return out
  }

  /// All buffers with dotted names (as `named_buffers()`).
  public func namedBuffers() -> [(name: String, tensor: Tensor)] {
    var out = bufferEntries
    for (childName, child) in childEntries {
      out += child.namedBuffers().map { ("\(childName).\($0.name)", $0.tensor) }
    }
    return out
  }

  /// This module and every descendant with dotted paths ("" for self), as `named_modules()`.
  public func namedModules() -> [(name: String, module: Module)] {
    var out: [(String, Module)] = [("", self)]
    for (childName, child) in childEntries {
      out += child.namedModules().map { ($0.name.isEmpty ? childName : "\(childName).\($0.name)", $0.module) }
    }
    return out
  }

  public func parameters() -> [Tensor] { namedParameters().map(\.tensor) }

  /// Number of scalar parameters.
  public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

  /// Parameters and buffers by their PyTorch `state_dict` keys (the tensors themselves, not copies).
  public func stateDict() -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (n, t) in namedParameters() { out[n] = t }
    for (n, t) in namedBuffers() { out[n] = t }
    return out
  }

  // MARK: Modes

  /// Switches this module and all descendants to training (`true`) or evaluation (`false`) mode.
  public func train(_ on: Bool = true) {
    for (_, m) in namedModules() { m.isTraining = on }
  }

  /// Evaluation mode, as `module.eval()`.
  public func eval() { train(false) }

  /// Stops (or restarts) gradient computation for all parameters, e.g. to freeze an encoder.
  public func freeze(_ frozen: Bool = true) throws {
    for p in parameters() { try p.requiringGrad(!frozen) }
  }

  /// Moves all parameters and buffers to `device` in place (identity of the `Module`'s tensors changes
  /// only in their storage).
  public func to(_ device: Device) throws {
    try withNoGrad {
      for m in namedModules().map(\.module) {
        for i in m.parameterEntries.indices {
          let t = m.parameterEntries[i].tensor
          if t.device != device {
            m.parameterEntries[i].tensor = try t.to(device).detach().requiringGrad(t.requiresGrad)
          }
        }
        for i in m.bufferEntries.indices where m.bufferEntries[i].tensor.device != device {
          m.bufferEntries[i].tensor = try m.bufferEntries[i].tensor.to(device)
        }
        m.didMoveTensors()
      }
    }
  }

  /// Re-lays out every 5-D parameter (the 3D convolution weights) in `format`, in place, as PyTorch's
  /// `module.to(memory_format=torch.channels_last_3d)`: the parameters keep their identity and values, so an
  /// optimizer holding them is unaffected as long as it has no state yet (AdamW creates its state in the
  /// parameter's layout). Convolutions with channels-last weights return channels-last activations; on this
  /// project's CPU that makes a bf16-autocast lite ResNet training step at the chest crop 3–4 % faster
  /// (docs/PERFORMANCE.md).
  /// Checkpoints are unaffected: safetensors are written from contiguous copies and loaded by value.
  public func convertParameters(to format: MemoryFormat) throws {
    for (_, t) in namedParameters() where t.shape.count == 5 { try t.setMemoryFormat(format) }
  }

  /// Called after `to(_:)` replaced tensors; subclasses that cache tensor references refresh them here
  /// with `parameter(_:)` / `buffer(_:)`.
  open func didMoveTensors() {}

  /// The directly registered parameter called `name`.
  public func parameter(_ name: String) -> Tensor? { parameterEntries.first { $0.name == name }?.tensor }
  /// The directly registered buffer called `name`.
  public func buffer(_ name: String) -> Tensor? { bufferEntries.first { $0.name == name }?.tensor }

  // MARK: Loading

  /// Copies values from `state` into this module's parameters and buffers (in place, no gradient), as
  /// `load_state_dict`. Values are converted to each tensor's dtype and device.
  ///
  /// - Parameter strict: when true, any missing, unexpected or mis-shaped key is an error and nothing
  ///   is loaded; when false, matching keys are loaded and the rest reported.
  /// - Returns: the keys that were missing, unexpected and mis-shaped.
  /// - Throws: `ModuleError.stateDictMismatch` (strict mode) listing every offending key by name.
  @discardableResult
  public func loadStateDict(_ state: [String: Tensor], strict: Bool = true) throws -> StateDictReport {
    let own = stateDict()
    var report = StateDictReport()
    report.missing = own.keys.filter { state[$0] == nil }.sorted()
    report.unexpected = state.keys.filter { own[$0] == nil }.sorted()
    for (key, target) in own {
      if let source = state[key], source.shape != target.shape {
        report.misshaped.append(.init(key: key, expected: target.shape, found: source.shape))
      }
    }
    report.misshaped.sort { $0.key < $1.key }
    if strict && !report.isClean { throw ModuleError.stateDictMismatch(report) }
    let bad = Set(report.misshaped.map(\.key))
    try withNoGrad {
      for (key, target) in own {
        guard let source = state[key], !bad.contains(key) else { continue }
        try target.copyFrom(source)
      }
    }
    return report
  }

  // MARK: Calling

  /// The module's computation. Subclasses with one input and one output override this.
  open func forward(_ x: Tensor) throws -> Tensor {
    throw ModuleError.notImplemented("\(type(of: self)).forward")
  }

  public func callAsFunction(_ x: Tensor) throws -> Tensor { try forward(x) }
}

/// What `loadStateDict` found.
public struct StateDictReport: Equatable, Sendable, CustomStringConvertible {
  public struct Misshaped: Equatable, Sendable {
    public let key: String
    public let expected: [Int]
    public let found: [Int]
  }
  public var missing: [String] = []
  public var unexpected: [String] = []
  public var misshaped: [Misshaped] = []

  public var isClean: Bool { missing.isEmpty && unexpected.isEmpty && misshaped.isEmpty }

  public var description: String {
    var parts: [String] = []
    if !missing.isEmpty { parts.append("missing keys: \(missing.joined(separator: ", "))") }
    if !unexpected.isEmpty { parts.append("unexpected keys: \(unexpected.joined(separator: ", "))") }
    if !misshaped.isEmpty {
      parts.append("mis-shaped keys: " + misshaped.map { "\($0.key) (model \($0.expected), checkpoint \($0.found))" }
        .joined(separator: ", "))
    }
    return parts.isEmpty ? "state dict matches" : parts.joined(separator: "; ")
  }
}

public enum ModuleError: Error, CustomStringConvertible, Equatable {
  case stateDictMismatch(StateDictReport)
  case notImplemented(String)
  case invalidConfiguration(String)

  public var description: String {
    switch self {
    case let .stateDictMismatch(r): return "state dict does not match the model: \(r)"
    case let .notImplemented(what): return "\(what) is not implemented"
    case let .invalidConfiguration(what): return what
    }
  }
}

import Foundation
import Testing
@testable import MedicalImaging

@Suite struct PreprocessCacheTests {
  @Test func chestPresetMatchesTheMethod() throws {
    let chest = try PreprocessConfig.preset("chest-ct")
    #expect(chest.spacingMM == [1.5, 1.5, 3] && chest.windowHU == [-1000, 200] && chest.size == [192, 192, 96])
    let abdomen = try PreprocessConfig.preset("abdomen-ct")
    #expect(abdomen.windowHU == [-1000, 1000] && abdomen.size == [224, 224, 144])
    #expect(throws: MedicalImagingError.self) { _ = try PreprocessConfig.preset("knee") }
    var bad = chest
    bad.spacingMM = [1.5, 0, 3]
    #expect(throws: MedicalImagingError.self) { try bad.validate() }
  }

  /// A real LPS scan → RAS, 1.5×1.5×3 mm, windowed, 64×64×32; written once, then reused; a config change
  /// rewrites it; a source change rewrites it.
  @Test func writesOnceReusesAndInvalidates() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let input = folder + "/scan.nii.gz"
    try FileManager.default.copyItem(atPath: Fixtures.dataPath("ct/ts_chest_cta_full_3mm.nii.gz"), toPath: input)
    var config = try PreprocessConfig.preset("chest-ct")
    config.size = [64, 64, 32]
    let cache = PreprocessCache(folder: folder + "/cache", config: config)
    guard case .written(let path) = try cache.process(input: input) else { Issue.record("not written"); return }
    let out = try NIfTI.read(path: path)
    #expect(out.shape == [64, 64, 32])
    #expect(out.orientation.codes == "RAS")
    for a in 0..<3 { #expect(abs(out.spacingMM[a] - config.spacingMM[a]) < 1e-6) }
    #expect(out.statistics.min >= -1.0001 && out.statistics.max <= 1.0001)
    #expect(out.sourceDType == "int16")

    // The cached file equals the in-memory pipeline within int16 quantisation.
    var generator = SeededGenerator(seed: 0)
    let direct = try cache.transform(try NIfTI.read(path: input), generator: &generator)
    let worst = zip(out.voxels, direct.voxels).map { abs($0 - $1) }.max()!
    #expect(worst <= 1.0 / 32767)
    for r in 0..<3 { for c in 0..<4 { #expect(abs(out.affine[r, c] - direct.affine[r, c]) < 1e-3) } }

    let sidecarURL = URL(fileURLWithPath: String(path.dropLast(7)) + ".json")
    let sidecar = try JSONDecoder().decode(PreprocessCache.Sidecar.self, from: Data(contentsOf: sidecarURL))
    #expect(sidecar.config == config)
    #expect(sidecar.sourceOrientation == "LPS" && sidecar.orientation == "RAS")
    #expect(sidecar.sourceShape == [116, 83, 95])

    #expect(try cache.process(input: input) == .reused(path: path))
    var other = config
    other.windowHU = [-1000, 1000]
    #expect(try PreprocessCache(folder: folder + "/cache", config: other).process(input: input) == .written(path: path))
    #expect(try PreprocessCache(folder: folder + "/cache", config: other).process(input: input) == .reused(path: path))
    // Change the source content.
    try FileManager.default.removeItem(atPath: input)
    try FileManager.default.copyItem(atPath: Fixtures.dataPath("ct/ts_abdomen_ct_small_3mm_30sl.nii.gz"), toPath: input)
    #expect(try PreprocessCache(folder: folder + "/cache", config: other).process(input: input) == .written(path: path))
    // No temporary files left behind.
    let names = try FileManager.default.contentsOfDirectory(atPath: folder + "/cache")
    #expect(names.allSatisfy { !$0.hasPrefix(".") }, "\(names)")
    #expect(names.count == 2)
  }

  @Test func mriProtocolZScores() throws {
    let folder = try Fixtures.temporaryFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    var config = try PreprocessConfig.preset("mri")
    config.size = [40, 40, 40]
    config.storage = .float32
    let cache = PreprocessCache(folder: folder, config: config)
    guard case .written(let path) = try cache.process(input: Fixtures.dataPath("mri/sct_cervical_spine_t1w.nii.gz")) else {
      Issue.record("not written"); return
    }
    let out = try NIfTI.read(path: path)
    #expect(out.shape == [40, 40, 40])
    #expect(out.orientation.codes == "RAS")
    #expect(out.voxels.allSatisfy { $0.isFinite })
  }
}

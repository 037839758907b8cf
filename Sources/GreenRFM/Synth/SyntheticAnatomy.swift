import Foundation
import MedicalImaging

/// Tissue classes of the synthetic chest (`SyntheticPatient.tissue`), one per voxel, after findings that change
/// anatomy (cardiomegaly, effusions, hiatal hernia, enlarged nodes, bronchial changes) but before findings that only
/// change densities (nodules, consolidation, emphysema, calcifications, ...).
public enum SyntheticTissue: UInt8, CaseIterable, Sendable {
  case air = 0, skin, subcutaneousFat, muscle, corticalBone, marrow, rightLung, leftLung, mediastinalFat, heart
  case epicardialFat, aortaLumen, aortaWall, vessel, airwayLumen, airwayWall, esophagus, liver, abdomen, stomachGas
  case costalCartilage, spinalCanal, disc, lungVessel, bronchusLumen, bronchusWall, pericardialEffusion
  case pleuralEffusion, lymphNode, hernia, ribCortex

  /// Lung parenchyma (either lung), without vessels and bronchi.
  public var isLungParenchyma: Bool { self == .rightLung || self == .leftLung }
}

/// Voxel grid and patient placement: maps voxel (i, j, k) to the body frame (mm; x towards the patient's left,
/// y posterior, z superior from the bottom of the field of view) through a small in-plane shift and roll.
struct SynthFrame {
  let ni, nj, nk: Int
  let sx, sy, sz: Double
  let ci, cj: Double
  var shiftX = 0.0, shiftY = 0.0, cosR = 1.0, sinR = 0.0

  init(shape: [Int], spacingMM: [Double]) {
    (ni, nj, nk) = (shape[0], shape[1], shape[2])
    (sx, sy, sz) = (spacingMM[0], spacingMM[1], spacingMM[2])
    ci = Double(ni - 1) / 2
    cj = Double(nj - 1) / 2
  }

  var fovX: Double { Double(ni) * sx }
  var fovY: Double { Double(nj) * sy }
  /// Height of the field of view in mm.
  var height: Double { Double(nk) * sz }

  @inline(__always) func index(_ i: Int, _ j: Int, _ k: Int) -> Int { i + ni * (j + nj * k) }

  @inline(__always) func body(_ i: Int, _ j: Int, _ k: Int) -> Vec3 {
    let dx = (Double(i) - ci) * sx - shiftX, dy = (Double(j) - cj) * sy - shiftY
    return Vec3(cosR * dx + sinR * dy, -sinR * dx + cosR * dy, (Double(k) + 0.5) * sz)
  }

  /// The inverse of `body`: the continuous voxel coordinates (voxel centres at whole numbers) of a body-frame point.
  @inline(__always) func voxelCoordinates(_ p: Vec3) -> (i: Double, j: Double, k: Double) {
    let dx = cosR * p.x - sinR * p.y + shiftX, dy = sinR * p.x + cosR * p.y + shiftY
    return (dx / sx + ci, dy / sy + cj, p.z / sz - 0.5)
  }

  /// The voxel whose centre is nearest to a body-frame point; nil outside the grid.
  func nearestVoxel(_ p: Vec3) -> (i: Int, j: Int, k: Int)? {
    let v = voxelCoordinates(p)
    let i = Int(v.i.rounded()), j = Int(v.j.rounded()), k = Int(v.k.rounded())
    guard (0..<ni).contains(i), (0..<nj).contains(j), (0..<nk).contains(k) else { return nil }
    return (i, j, k)
  }

  /// The voxel index ranges covering a body-frame box, clipped to the grid; nil when empty.
  func voxelBox(_ lo: Vec3, _ hi: Vec3) -> (i: ClosedRange<Int>, j: ClosedRange<Int>, k: ClosedRange<Int>)? {
    var iLo = Double.infinity, iHi = -Double.infinity, jLo = Double.infinity, jHi = -Double.infinity
    for x in [lo.x, hi.x] {
      for y in [lo.y, hi.y] {
        let (i, j, _) = voxelCoordinates(Vec3(x, y, 0))
        iLo = min(iLo, i); iHi = max(iHi, i); jLo = min(jLo, j); jHi = max(jHi, j)
      }
    }
    let kLo = voxelCoordinates(lo).k, kHi = voxelCoordinates(hi).k
    let i0 = max(0, Int(iLo.rounded(.down))), i1 = min(ni - 1, Int(iHi.rounded(.up)))
    let j0 = max(0, Int(jLo.rounded(.down))), j1 = min(nj - 1, Int(jHi.rounded(.up)))
    let k0 = max(0, Int(kLo.rounded(.down))), k1 = min(nk - 1, Int(kHi.rounded(.up)))
    guard i0 <= i1, j0 <= j1, k0 <= k1 else { return nil }
    return (i0...i1, j0...j1, k0...k1)
  }
}

/// Per-patient anatomy (mm, body frame), drawn from the patient's anatomy stream only.
struct SynthAnatomy {
  var A = 0.0, B = 0.0, scale = 1.0, fat = 0.0, muscle = 0.0
  var rv = 0.0, vertebraHeight = 0.0, vertebraPhase = 0.0
  var medHalfWidth = 0.0, medShift = 0.0
  var heartCenter = Vec3(0, 0, 0), heartA = 0.0, heartB = 0.0, heartC = 0.0, heartCos = 1.0, heartSin = 0.0
  var epicardialFat = 3.0
  var diaphragmRight = 0.25, diaphragmLeft = 0.2, lungTop = 0.97
  var ribSpacing = 0.0, ribOffset = 0.0, ribSlope = 0.0, ribHalfHeight = 0.0, ribHalfThickness = 0.0
  var lungHU = -850.0, fatHU = -100.0, muscleHU = 45.0, bloodHU = 40.0, liverHU = 60.0
  var corticalHU = 600.0, ribHU = 700.0, marrowHU = 200.0, noiseHU = 15.0
  var aortaRadius = 12.0, aortaPath: [Vec3] = [], pulmonaryTrunk: [Vec3] = [], rightPA: [Vec3] = [], leftPA: [Vec3] = []
  var svc: [Vec3] = [], svcRadius = 7.0, trachea: [Vec3] = [], tracheaRadius = 8.0, rightBronchus: [Vec3] = []
  var leftBronchus: [Vec3] = [], esophagus: [Vec3] = [], esophagusRadius = 5.0
  var hilumRight = Vec3(0, 0, 0), hilumLeft = Vec3(0, 0, 0), carina = Vec3(0, 0, 0), archZ = 0.0
  var stomachGas = Vec3(0, 0, 0), stomachGasAxes = Vec3(1, 1, 1)
  var textureWaves: [(k: Vec3, phase: Double, amplitude: Double)] = []
  var lungTree: [(points: [Vec3], radius: Double, bronchus: Bool, side: Int)] = []

  /// Body and thoracic-cavity semi-axes at height z (the chest narrows towards the apex).
  @inline(__always) func bodyAxes(_ z: Double, height: Double) -> (a: Double, b: Double, ac: Double, bc: Double) {
    let t = z / height
    let a = A * (1 - 0.10 * t * t), b = B * (1 - 0.05 * t * t)
    return (a, b, a - fat - muscle, b - fat - muscle)
  }

  /// y of the vertebral body's centre at height z.
  @inline(__always) func vertebraY(_ z: Double, height: Double) -> Double {
    bodyAxes(z, height: height).b - fat - muscle - 2.0 * rv
  }

  /// Height (mm) of the diaphragm's upper surface under (x, y).
  @inline(__always) func diaphragmZ(_ x: Double, _ y: Double, ac: Double, bc: Double, height: Double) -> Double {
    func dome(_ centreX: Double, _ base: Double, _ top: Double) -> Double {
      let u = (x - centreX) / (0.8 * ac), v = (y + 0.1 * bc) / (1.1 * bc)
      return height * (base + top * max(0, 1 - u * u - v * v))
    }
    return max(dome(medShift - 0.45 * ac, 0.03, diaphragmRight), dome(medShift + 0.45 * ac, 0.01, diaphragmLeft))
  }

  init() {}

  init(random r: inout SynthRandom, frame: SynthFrame, noiseHU: Double) {
    let Z = frame.height
    A = min(0.465 * frame.fovX * r.uniform(0.93, 1.0), 165 * r.uniform(0.9, 1.05))
    B = min(A * r.uniform(0.62, 0.74), 0.46 * frame.fovY)
    scale = A / 160
    let S = scale
    fat = S * r.uniform(7, 20)
    muscle = max(3, S * r.uniform(9, 14))
    rv = max(6, S * r.uniform(14, 17))
    vertebraHeight = 0.12 * Z * r.uniform(0.95, 1.05)
    vertebraPhase = r.uniform(0, vertebraHeight)
    let ac0 = A - fat - muscle, bc0 = B - fat - muscle
    medHalfWidth = ac0 * r.uniform(0.09, 0.13)
    medShift = ac0 * r.uniform(0.0, 0.04)
    diaphragmRight = r.uniform(0.20, 0.28)
    diaphragmLeft = r.uniform(0.15, 0.22)
    lungTop = r.uniform(0.93, 1.0)

    heartA = ac0 * r.uniform(0.36, 0.42)
    heartB = bc0 * r.uniform(0.40, 0.48)
    heartC = Z * r.uniform(0.17, 0.21)
    let angle = r.uniform(25, 40) * Double.pi / 180
    heartCos = Foundation.cos(angle)
    heartSin = Foundation.sin(angle)
    let extentY = ((heartA * heartSin) * (heartA * heartSin) + (heartB * heartCos) * (heartB * heartCos)).squareRoot()
    let extentX = ((heartA * heartCos) * (heartA * heartCos) + (heartB * heartSin) * (heartB * heartSin)).squareRoot()
    let heartZ = Z * (0.03 + diaphragmRight * 0.7) + 0.8 * heartC
    heartCenter = Vec3(medShift + 0.3 * extentX, -bc0 + 0.95 * extentY, heartZ)
    epicardialFat = r.uniform(2.5, 5)

    ribSpacing = 0.085 * Z * r.uniform(0.95, 1.05)
    ribOffset = r.uniform(0, ribSpacing)
    ribSlope = 0.28 * Z / 2.45 * r.uniform(0.85, 1.15)
    ribHalfHeight = 0.22 * ribSpacing
    ribHalfThickness = 1.8 + 2.2 * S

    lungHU = r.uniform(-875, -835)
    fatHU = r.uniform(-110, -85)
    muscleHU = r.uniform(38, 52)
    bloodHU = r.uniform(35, 48)
    liverHU = r.uniform(52, 66)
    corticalHU = r.uniform(500, 750)
    ribHU = r.uniform(550, 800)
    marrowHU = r.uniform(150, 260)
    self.noiseHU = noiseHU * r.uniform(0.7, 1.3)

    // Great vessels and airways.
    let yv = vertebraY(0.6 * Z, height: Z)
    aortaRadius = max(5, S * r.uniform(12, 15))
    let ra = aortaRadius
    esophagusRadius = max(3.5, 6 * S)
    tracheaRadius = max(5, 9 * S)
    let yEso = yv - rv - esophagusRadius - 2
    let yTr = yEso - esophagusRadius - tracheaRadius - 1.5
    let xTr = medShift - 1.5
    archZ = Z * r.uniform(0.72, 0.8)
    let carinaZ = Z * r.uniform(0.58, 0.65)
    carina = Vec3(xTr, yTr, carinaZ)
    let rootZ = heartCenter.z + 0.6 * heartC
    let asc = Vec3(medShift - 0.5 * ra - 2, -bc0 * r.uniform(0.3, 0.4), rootZ)
    let desc = Vec3(rv + 0.7 * ra, yv - 0.5 * rv, archZ)
    var path = [asc, Vec3(asc.x, asc.y, archZ)]
    for n in 1..<6 {
      let s = Double(n) / 6
      let base = Vec3.lerp(Vec3(asc.x, asc.y, archZ), desc, s)
      let bow = Foundation.sin(Double.pi * s)
      path.append(Vec3(base.x + 0.15 * ra * bow, base.y - 0.2 * ra * bow, archZ + 1.0 * ra * bow))
    }
    path.append(desc)
    path.append(Vec3(desc.x + 0.1 * ra, desc.y - 0.1 * rv, -10))
    aortaPath = path
    hilumRight = Vec3(medShift - 0.30 * ac0, yTr + 4, carinaZ - 0.05 * Z)
    hilumLeft = Vec3(medShift + 0.32 * ac0, yTr + 4, carinaZ - 0.04 * Z)
    trachea = [Vec3(xTr, yTr, Z + 10), carina]
    rightBronchus = [carina, Vec3(hilumRight.x, hilumRight.y, hilumRight.z)]
    leftBronchus = [carina, Vec3(hilumLeft.x, hilumLeft.y, hilumLeft.z + 2)]
    let bifurcation = Vec3(medShift + 0.12 * ac0, yTr - tracheaRadius - 0.6 * ra, carinaZ - 0.03 * Z)
    pulmonaryTrunk = [Vec3(medShift + 0.18 * ac0, -bc0 * 0.55, rootZ - 0.04 * Z), bifurcation]
    leftPA = [bifurcation, Vec3(hilumLeft.x, hilumLeft.y - 4, hilumLeft.z + 3)]
    rightPA = [bifurcation, Vec3(hilumRight.x, hilumRight.y - 5, hilumRight.z + 1)]
    svcRadius = 0.6 * ra
    svc = [Vec3(asc.x - ra - svcRadius - 1, asc.y + 0.3 * ra, Z + 10), Vec3(asc.x - ra - svcRadius, asc.y + 0.4 * ra, rootZ - 0.05 * Z)]
    let dZ = diaphragmZ(medShift + 0.2 * ac0, yEso, ac: ac0, bc: bc0, height: Z)
    esophagus = [Vec3(medShift + 2, yEso, Z + 10), Vec3(medShift + 3, yEso, carinaZ),
                 Vec3(medShift + 0.15 * ac0, yEso - 2, dZ), Vec3(medShift + 0.35 * ac0, -0.1 * bc0, 0.05 * Z)]
    let leftDomeZ = diaphragmZ(medShift + 0.45 * ac0, -0.25 * bc0, ac: ac0, bc: bc0, height: Z)
    stomachGasAxes = Vec3(max(8, 20 * S), max(6, 15 * S), max(5, 9 * S))
    stomachGas = Vec3(medShift + 0.45 * ac0, -0.25 * bc0, leftDomeZ - stomachGasAxes.z - 3)

    // Lung texture: a few plane waves (mm wavelengths 6–20).
    for _ in 0..<4 {
      let k = r.direction() * (2 * Double.pi / r.uniform(6, 20))
      textureWaves.append((k, r.uniform(0, 2 * Double.pi), r.uniform(4, 8)))
    }

    // Bronchovascular bundles: main branches from each hilum with two children each; bronchi along main branches.
    for side in 0..<2 {
      let s = side == 0 ? -1.0 : 1.0
      let hilum = side == 0 ? hilumRight : hilumLeft
      let targets = [
        Vec3(s * 0.45, 0.1, 0.95 * lungTop), Vec3(s * 0.5, -0.7, 0.75), Vec3(s * 0.85, 0.0, 0.5),
        Vec3(s * 0.45, -0.75, 0.45), Vec3(s * 0.55, 0.8, 0.45), Vec3(s * 0.75, 0.2, 0.2), Vec3(s * 0.45, 0.85, 0.12),
      ]
      for t in targets {
        let target = Vec3(medShift + t.x * ac0 * r.uniform(0.9, 1.05), t.y * bc0 * r.uniform(0.9, 1.05), t.z * Z * r.uniform(0.95, 1.05))
        let end = Vec3.lerp(hilum, target, 0.85)
        lungTree.append(([hilum, end], 3.0, true, side))
        let length = (end - hilum).length
        for (from, radius) in [(0.45, 2.0), (0.7, 1.6)] {
          let start = Vec3.lerp(hilum, end, from)
          let jitter = r.direction() * (0.3 * length)
          let childEnd = Vec3.lerp(start, end + jitter, 0.9)
          lungTree.append(([start, childEnd], radius, false, side))
          for _ in 0..<2 {
            let from = Vec3.lerp(start, childEnd, r.uniform(0.4, 0.8))
            let to = from + ((childEnd - start).normalised + r.direction() * 0.8).normalised * (0.35 * length)
            lungTree.append(([from, to], 1.3, false, side))
          }
        }
      }
    }
  }
}

/// Parameters of the findings present in one patient (drawn from each finding's own stream), and what the report
/// can say about them.
struct SynthFindingPlan {
  var present: [Bool]
  var effusionRight = 0.0, effusionLeft = 0.0, effusionHeight = 0.0
  var pericardialEffusion = 0.0
  var cardiomegalyScale = 1.0
  var hernia: (centre: Vec3, axes: Vec3)? = nil
  var nodes: [(centre: Vec3, radius: Double)] = []
  var bronchiectasisSides: [Bool] = [false, false], bronchiectasisLumen = 1.6
  var peribronchialWall = 1.0
  /// Words for the report per finding index: side ("right", "left", "bilateral"), size in mm, lobe, count, kind.
  var side: [Int: String] = [:], sizeMM: [Int: Int] = [:], lobe: [Int: String] = [:], count: [Int: Int] = [:]
  var kind: [Int: Int] = [:]
}

/// Renders one synthetic chest CT: anatomy, then findings, then noise. Pure function of its inputs.
struct SynthRenderer {
  let frame: SynthFrame
  var anatomy: SynthAnatomy
  var plan: SynthFindingPlan
  var tissue: [UInt8]
  var hu: [Float]

  init(frame: SynthFrame, anatomy: SynthAnatomy, plan: SynthFindingPlan) {
    self.frame = frame
    self.anatomy = anatomy
    self.plan = plan
    let n = frame.ni * frame.nj * frame.nk
    tissue = [UInt8](repeating: 0, count: n)
    hu = [Float](repeating: -1000, count: n)
  }

  // MARK: - Geometry helpers

  @inline(__always) static func clamp01(_ v: Double) -> Double { min(1, max(0, v)) }

  /// Blends voxel `index` towards `target` HU by `weight` in [0, 1].
  @inline(__always) mutating func blend(_ index: Int, _ target: Double, _ weight: Double) {
    guard weight > 0 else { return }
    let old = Double(hu[index])
    hu[index] = Float(old + weight * (target - old))
  }

  func isLung(_ index: Int) -> Bool {
    let t = tissue[index]
    return t == SyntheticTissue.rightLung.rawValue || t == SyntheticTissue.leftLung.rawValue
  }

  /// Lung voxels including vessels and bronchi inside the lungs.
  func isLungRegion(_ index: Int) -> Bool {
    let t = tissue[index]
    return t == SyntheticTissue.rightLung.rawValue || t == SyntheticTissue.leftLung.rawValue
      || t == SyntheticTissue.lungVessel.rawValue || t == SyntheticTissue.bronchusLumen.rawValue
      || t == SyntheticTissue.bronchusWall.rawValue
  }

  /// A random point whose voxel and the six points `margin` mm away along the axes are lung parenchyma of `side`
  /// (0 right, 1 left, nil either) and satisfy `accept`; nil after 400 tries.
  func lungPoint(_ r: inout SynthRandom, side: Int?, margin: Double, zRange: ClosedRange<Double> = 0...1,
                 accept: (Vec3) -> Bool = { _ in true }) -> Vec3? {
    let wanted: [UInt8] = side == nil ? [SyntheticTissue.rightLung.rawValue, SyntheticTissue.leftLung.rawValue]
      : [side == 0 ? SyntheticTissue.rightLung.rawValue : SyntheticTissue.leftLung.rawValue]
    for _ in 0..<400 {
      let i = r.int(frame.ni), j = r.int(frame.nj)
      let kLo = Int(zRange.lowerBound * Double(frame.nk)), kHi = max(kLo, Int(zRange.upperBound * Double(frame.nk)) - 1)
      let k = min(frame.nk - 1, kLo + r.int(kHi - kLo + 1))
      guard wanted.contains(tissue[frame.index(i, j, k)]) else { continue }
      let p = frame.body(i, j, k)
      guard accept(p) else { continue }
      var ok = true
      for d in [Vec3(margin, 0, 0), Vec3(-margin, 0, 0), Vec3(0, margin, 0), Vec3(0, -margin, 0), Vec3(0, 0, margin), Vec3(0, 0, -margin)] {
        guard let v = voxel(at: p + d), wanted.contains(tissue[v]) else { ok = false; break }
      }
      if ok { return p }
    }
    return nil
  }

  /// The voxel index nearest to a body-frame point, nil outside the grid.
  func voxel(at p: Vec3) -> Int? {
    let dx = frame.cosR * p.x - frame.sinR * p.y + frame.shiftX, dy = frame.sinR * p.x + frame.cosR * p.y + frame.shiftY
    let i = Int((dx / frame.sx + frame.ci).rounded()), j = Int((dy / frame.sy + frame.cj).rounded())
    let k = Int((p.z / frame.sz - 0.5).rounded())
    guard i >= 0, i < frame.ni, j >= 0, j < frame.nj, k >= 0, k < frame.nk else { return nil }
    return frame.index(i, j, k)
  }

  // MARK: - Pass 1: tissue classes from analytic shapes

  mutating func classify() {
    let a = anatomy, Z = frame.height
    let T = SyntheticTissue.self
    let heartA = a.heartA * plan.cardiomegalyScale, heartB = a.heartB * plan.cardiomegalyScale
    let heartC = a.heartC * (1 + 0.45 * (plan.cardiomegalyScale - 1))
    let heartCentre = Vec3(a.heartCenter.x + 0.35 * (heartA - a.heartA), a.heartCenter.y, a.heartCenter.z + 0.3 * (heartC - a.heartC))
    let pericardial = plan.pericardialEffusion
    let ni = frame.ni, nj = frame.nj
    tissue.withUnsafeMutableBufferPointer { out in
      for k in 0..<frame.nk {
        let z = (Double(k) + 0.5) * frame.sz
        let t = z / Z
        let (A, B, ac, bc) = a.bodyAxes(z, height: Z)
        let yv = a.vertebraY(z, height: Z)
        let rv = a.rv
        let apex: Double = t <= 0.7 ? 1.2 : 1.2 * max(0, (a.lungTop - t) / (a.lungTop - 0.7)).squareRoot()
        let discPhase = ((z - a.vertebraPhase) / a.vertebraHeight).truncatingRemainder(dividingBy: 1)
        let inDisc = (discPhase < 0 ? discPhase + 1 : discPhase) < 0.17
        let sternumHalfWidth = (t > 0.8 ? 1.6 : 1.0) * max(5, 12 * a.scale)
        let sternumHalfThickness = max(2.5, 5 * a.scale + 1)
        let sternumY = -(B - a.fat - 0.5 * a.muscle)
        for j in 0..<nj {
          for i in 0..<ni {
            let p = frame.body(i, j, k)
            let x = p.x, y = p.y
            let rho2 = (x / A) * (x / A) + (y / B) * (y / B)
            let idx = i + ni * (j + nj * k)
            if rho2 >= 1 { out[idx] = T.air.rawValue; continue }
            let rho = rho2.squareRoot()
            let r = (x * x + y * y).squareRoot()
            let depth = rho > 1e-9 ? r * (1 / rho - 1) : A
            if depth < 1.5 { out[idx] = T.skin.rawValue; continue }
            if depth < a.fat { out[idx] = T.subcutaneousFat.rawValue; continue }
            let xs = x - a.medShift * 0.3
            let bump = y > 0 ? 2.2 * rv * max(0, 1 - (xs / (3 * rv)) * (xs / (3 * rv))) : 0
            let wall = a.fat + a.muscle + bump
            // Spine: vertebral body, canal, posterior elements.
            let vx = xs / (1.05 * rv), vy = (y - yv) / (0.92 * rv)
            let vb = (vx * vx + vy * vy).squareRoot()
            if vb <= 1 {
              out[idx] = inDisc ? T.disc.rawValue : (vb > 1 - 2.0 / rv ? T.corticalBone.rawValue : T.marrow.rawValue)
              continue
            }
            let cy = yv + 1.55 * rv
            let dc = (xs * xs + (y - cy) * (y - cy)).squareRoot()
            if dc < 0.5 * rv { out[idx] = T.spinalCanal.rawValue; continue }
            if !inDisc {
              if (dc < 0.8 * rv && y > yv + 0.9 * rv) || (abs(xs) < 0.2 * rv && y > yv + 2.1 * rv && y < yv + 3.3 * rv)
                || (abs(y - (yv + 1.4 * rv)) < 0.25 * rv && abs(xs) < 1.9 * rv) {
                out[idx] = T.corticalBone.rawValue
                continue
              }
            }
            // Sternum.
            if t > 0.3 && t < 0.92 && abs(x - a.medShift * 0.3) < sternumHalfWidth && abs(y - sternumY) < sternumHalfThickness {
              let edge = min(sternumHalfWidth - abs(x - a.medShift * 0.3), sternumHalfThickness - abs(y - sternumY))
              out[idx] = edge < 1.5 ? T.corticalBone.rawValue : T.marrow.rawValue
              continue
            }
            // Ribs: oblique bands descending anteriorly, at the inner surface of the chest wall.
            let phi = Foundation.atan2(abs(x - a.medShift * 0.3), y)
            if phi > 0.3 && phi < 2.8 {
              let ribDepth = wall - 0.3 * a.ribHalfThickness
              let dd = depth - ribDepth
              if abs(dd) < a.ribHalfThickness {
                let u = (z + a.ribSlope * phi - a.ribOffset) / a.ribSpacing
                let n = u.rounded()
                let dz = (u - n) * a.ribSpacing
                let ribZ = z - dz
                if abs(dz) < a.ribHalfHeight && ribZ + a.ribSlope * phi < (a.lungTop + 0.02) * Z && ribZ > 0.02 * Z {
                  if phi > 2.35 {
                    out[idx] = T.costalCartilage.rawValue
                  } else {
                    let edge = min(a.ribHalfHeight - abs(dz), a.ribHalfThickness - abs(dd))
                    out[idx] = edge < 1.6 ? T.ribCortex.rawValue : T.marrow.rawValue
                  }
                  continue
                }
              }
            }
            if depth < wall { out[idx] = T.muscle.rawValue; continue }
            // Thoracic cavity. Heart and pericardium.
            let hx = x - heartCentre.x, hy = y - heartCentre.y, hz = z - heartCentre.z
            let hu = (hx * a.heartCos - hy * a.heartSin) / heartA, hv = (hx * a.heartSin + hy * a.heartCos) / heartB
            let hw = hz / heartC
            let hrho = (hu * hu + hv * hv + hw * hw).squareRoot()
            if hrho <= 1 { out[idx] = T.heart.rawValue; continue }
            let hOut = (hx * hx + hy * hy + hz * hz).squareRoot() * (1 - 1 / hrho)
            if hOut < a.epicardialFat { out[idx] = T.epicardialFat.rawValue; continue }
            if hOut < a.epicardialFat + pericardial { out[idx] = T.pericardialEffusion.rawValue; continue }
            if let hernia = plan.hernia {
              let u = (x - hernia.centre.x) / hernia.axes.x, v = (y - hernia.centre.y) / hernia.axes.y
              let w = (z - hernia.centre.z) / hernia.axes.z
              let q = (u * u + v * v + w * w).squareRoot()
              if q <= 1 {
                let inner = q < 1 - 4 / min(hernia.axes.x, hernia.axes.y)
                out[idx] = inner && v < 0.2 ? T.stomachGas.rawValue : T.hernia.rawValue  // gas over the fluid level
                continue
              }
            }
            let zd = a.diaphragmZ(x, y, ac: ac, bc: bc, height: Z)
            if z < zd {
              if x < a.medShift + 0.05 * ac {
                out[idx] = T.liver.rawValue
              } else {
                let g = a.stomachGas, ga = a.stomachGasAxes
                let gu = (x - g.x) / ga.x, gv = (y - g.y) / ga.y, gw = (z - g.z) / ga.z
                out[idx] = gu * gu + gv * gv + gw * gw <= 1 ? T.stomachGas.rawValue : T.abdomen.rawValue
              }
              continue
            }
            if hOut < a.epicardialFat + pericardial + 3 { out[idx] = T.mediastinalFat.rawValue; continue }
            let mx = x - a.medShift
            let taper = 0.55 + 0.45 * min(1, max(0, (y + bc) / max(1, bc + yv)))
            var halfWidth = a.medHalfWidth * (t > 0.55 ? 1.25 : 1.0) * taper
            if y > yv - 2.2 * rv { halfWidth = max(halfWidth, 1.4 * rv) }
            if abs(mx) < halfWidth { out[idx] = t > 0.9 ? T.muscle.rawValue : T.mediastinalFat.rawValue; continue }
            let side = mx < 0 ? 0 : 1
            let lx = (x - (a.medShift + (side == 0 ? -0.5 : 0.5) * ac)) / (0.75 * ac * apex)
            let ly = (y - 0.05 * bc) / (1.3 * bc * apex)
            if apex <= 0 || lx * lx + ly * ly > 1 {
              out[idx] = t > 0.75 ? T.muscle.rawValue : T.mediastinalFat.rawValue
              continue
            }
            let effusion = side == 0 ? plan.effusionRight : plan.effusionLeft
            if effusion > 0 {
              let posterior = bc * max(0, 1 - (x / ac) * (x / ac)).squareRoot()
              let thickness = effusion * min(1, 2 * max(0, 1 - z / plan.effusionHeight))  // full over the lower half, then tapering
              if y > posterior - thickness { out[idx] = T.pleuralEffusion.rawValue; continue }
            }
            out[idx] = side == 0 ? T.rightLung.rawValue : T.leftLung.rawValue
          }
        }
      }
    }
  }

  // MARK: - Pass 2: tubes (vessels, airways) and enlarged nodes

  /// Draws a tube along a polyline: lumen inside `radius - wall`, wall out to `radius`, then `margin` mm of
  /// `marginTissue` over lung. Each only replaces tissues in its mask (bit n = tissue raw value n).
  mutating func tube(_ points: [Vec3], radius: Double, wall: Double, lumen: SyntheticTissue, wallTissue: SyntheticTissue,
                     margin: Double, marginTissue: SyntheticTissue, replaces: UInt64) {
    let lungMask: UInt64 = 1 << UInt64(SyntheticTissue.rightLung.rawValue) | 1 << UInt64(SyntheticTissue.leftLung.rawValue)
    let lumenRaw = lumen.rawValue, wallRaw = wallTissue.rawValue, marginRaw = marginTissue.rawValue
    let replace = replaces | 1 << UInt64(wallRaw) | (margin > 0 ? 1 << UInt64(marginRaw) : 0)
    let f = frame
    for n in 0..<(points.count - 1) {
      var updates: [(Int, UInt8)] = []
      f.forEachVoxel(nearSegment: points[n], points[n + 1], reach: radius + margin) { index, d, _ in
        let current = tissue[index]
        let bit: UInt64 = 1 << UInt64(current)
        if d <= radius - wall {
          if replace & bit != 0 || current == lumenRaw { updates.append((index, lumenRaw)) }
        } else if d <= radius {
          if replace & bit != 0 && current != lumenRaw { updates.append((index, wallRaw)) }
        } else if lungMask & bit != 0 {
          updates.append((index, marginRaw))
        }
      }
      for (index, value) in updates { tissue[index] = value }
    }
  }

  static func mask(_ tissues: [SyntheticTissue]) -> UInt64 { tissues.reduce(0) { $0 | 1 << UInt64($1.rawValue) } }

  mutating func drawTubes() {
    let a = anatomy
    let soft = Self.mask([.rightLung, .leftLung, .mediastinalFat, .muscle, .epicardialFat, .abdomen, .liver])
    tube(a.aortaPath, radius: a.aortaRadius, wall: 2, lumen: .aortaLumen, wallTissue: .aortaWall, margin: 3,
         marginTissue: .mediastinalFat, replaces: soft | Self.mask([.heart]))
    for path in [a.pulmonaryTrunk] {
      tube(path, radius: 0.95 * a.aortaRadius, wall: 0, lumen: .vessel, wallTissue: .vessel, margin: 2,
           marginTissue: .mediastinalFat, replaces: soft)
    }
    for path in [a.rightPA, a.leftPA] {
      tube(path, radius: 0.65 * a.aortaRadius, wall: 0, lumen: .vessel, wallTissue: .vessel, margin: 2,
           marginTissue: .mediastinalFat, replaces: soft)
    }
    tube(a.svc, radius: a.svcRadius, wall: 0, lumen: .vessel, wallTissue: .vessel, margin: 2, marginTissue: .mediastinalFat,
         replaces: soft)
    let airwayReplaces = soft | Self.mask([.vessel])
    tube(a.trachea, radius: a.tracheaRadius, wall: 1.8, lumen: .airwayLumen, wallTissue: .airwayWall, margin: 2,
         marginTissue: .mediastinalFat, replaces: airwayReplaces)
    for path in [a.rightBronchus, a.leftBronchus] {
      tube(path, radius: 0.65 * a.tracheaRadius, wall: 1.5, lumen: .airwayLumen, wallTissue: .airwayWall, margin: 1.5,
           marginTissue: .mediastinalFat, replaces: airwayReplaces)
    }
    tube(a.esophagus, radius: a.esophagusRadius, wall: 0, lumen: .esophagus, wallTissue: .esophagus, margin: 2,
         marginTissue: .mediastinalFat, replaces: Self.mask([.rightLung, .leftLung, .mediastinalFat, .abdomen, .liver]))
    // Bronchovascular bundles inside the lungs.
    let lungs = Self.mask([.rightLung, .leftLung])
    for branch in a.lungTree {
      tube(branch.points, radius: branch.radius, wall: 0, lumen: .lungVessel, wallTissue: .lungVessel, margin: 0,
           marginTissue: .lungVessel, replaces: lungs)
      guard branch.bronchus else { continue }
      let start = branch.points[0], end = branch.points[1]
      let axis = (end - start).normalised
      var offset = axis.cross(Vec3(0, 0, 1))
      if offset.length < 0.2 { offset = Vec3(1, 0, 0) }
      let ectatic = plan.bronchiectasisSides[branch.side] && end.z < 0.55 * frame.height
      let lumenRadius = ectatic ? plan.bronchiectasisLumen : 1.6
      let wall = plan.peribronchialWall * (ectatic ? 1.2 : 1.0)
      let shift = offset.normalised * (branch.radius + lumenRadius + wall + 0.4)
      tube([start + shift, Vec3.lerp(start, end, ectatic ? 0.95 : 0.8) + shift], radius: lumenRadius + wall, wall: wall,
           lumen: .bronchusLumen, wallTissue: .bronchusWall, margin: 0, marginTissue: .bronchusWall,
           replaces: lungs | Self.mask([.lungVessel]))
    }
    // Enlarged lymph nodes: round soft tissue in mediastinal fat and at the hila.
    let f = frame
    let nodeReplaces = Self.mask([.mediastinalFat, .rightLung, .leftLung, .epicardialFat, .lungVessel])
    for node in plan.nodes {
      var updates: [Int] = []
      f.forEachVoxel(nearSegment: node.centre, node.centre, reach: node.radius) { index, _, _ in
        if nodeReplaces & (1 << UInt64(tissue[index])) != 0 { updates.append(index) }
      }
      for index in updates { tissue[index] = SyntheticTissue.lymphNode.rawValue }
    }
  }

  // MARK: - Pass 3: densities

  mutating func assignDensities(contrast: Bool) {
    let a = anatomy
    var table = [Double](repeating: 0, count: 64)
    let T = SyntheticTissue.self
    table[Int(T.air.rawValue)] = -1000
    table[Int(T.skin.rawValue)] = 20
    table[Int(T.subcutaneousFat.rawValue)] = a.fatHU
    table[Int(T.muscle.rawValue)] = a.muscleHU
    table[Int(T.corticalBone.rawValue)] = a.corticalHU
    table[Int(T.marrow.rawValue)] = a.marrowHU
    table[Int(T.mediastinalFat.rawValue)] = a.fatHU + 10
    table[Int(T.heart.rawValue)] = a.bloodHU + 3
    table[Int(T.epicardialFat.rawValue)] = a.fatHU - 5
    table[Int(T.aortaLumen.rawValue)] = contrast ? 250 : a.bloodHU
    table[Int(T.aortaWall.rawValue)] = a.bloodHU + 5
    table[Int(T.vessel.rawValue)] = contrast ? 180 : a.bloodHU
    table[Int(T.airwayLumen.rawValue)] = -995
    table[Int(T.airwayWall.rawValue)] = 70
    table[Int(T.esophagus.rawValue)] = a.muscleHU - 5
    table[Int(T.liver.rawValue)] = a.liverHU
    table[Int(T.abdomen.rawValue)] = a.muscleHU - 8
    table[Int(T.stomachGas.rawValue)] = -990
    table[Int(T.costalCartilage.rawValue)] = 120
    table[Int(T.spinalCanal.rawValue)] = 15
    table[Int(T.disc.rawValue)] = 85
    table[Int(T.lungVessel.rawValue)] = contrast ? 150 : a.bloodHU - 5
    table[Int(T.bronchusLumen.rawValue)] = -985
    table[Int(T.bronchusWall.rawValue)] = 15
    table[Int(T.pericardialEffusion.rawValue)] = 15
    table[Int(T.pleuralEffusion.rawValue)] = 10
    table[Int(T.lymphNode.rawValue)] = 40
    table[Int(T.hernia.rawValue)] = 30
    table[Int(T.ribCortex.rawValue)] = a.ribHU
    let rightLung = T.rightLung.rawValue, leftLung = T.leftLung.rawValue
    let waves = a.textureWaves
    let Z = frame.height
    for k in 0..<frame.nk {
      for j in 0..<frame.nj {
        for i in 0..<frame.ni {
          let idx = frame.index(i, j, k)
          let t = tissue[idx]
          if t == rightLung || t == leftLung {
            let p = frame.body(i, j, k)
            var v = a.lungHU
            for w in waves { v += w.amplitude * Foundation.sin(w.k.dot(p) + w.phase) }
            let (_, _, _, bc) = a.bodyAxes(p.z, height: Z)
            v += 35 * max(0, p.y / bc)  // gravity-dependent density (supine)
            hu[idx] = Float(v)
          } else {
            hu[idx] = Float(table[Int(t)])
          }
        }
      }
    }
  }

  // MARK: - Pass 5: noise

  mutating func addNoise(_ r: inout SynthRandom) {
    let sigma = anatomy.noiseHU
    let n = hu.count
    hu.withUnsafeMutableBufferPointer { out in
      var index = 0
      while index < n {
        let u1 = max(r.uniform(), 0x1p-60), u2 = r.uniform()
        let radius = sigma * (-2 * Foundation.log(u1)).squareRoot()
        let angle = 2 * Double.pi * u2
        for (offset, value) in [(0, radius * Foundation.cos(angle)), (1, radius * Foundation.sin(angle))] where index + offset < n {
          let v = (Double(out[index + offset]) + value).rounded()
          out[index + offset] = Float(min(3071, max(-1024, v)))
        }
        index += 2
      }
    }
  }
}

extension SynthFrame {
  /// Calls `body(index, distanceMM, point)` for every voxel within `reach` mm of the segment a–b.
  func forEachVoxel(nearSegment a: Vec3, _ b: Vec3, reach: Double, _ visit: (Int, Double, Vec3) -> Void) {
    let lo = Vec3(min(a.x, b.x) - reach, min(a.y, b.y) - reach, min(a.z, b.z) - reach)
    let hi = Vec3(max(a.x, b.x) + reach, max(a.y, b.y) + reach, max(a.z, b.z) + reach)
    guard let box = voxelBox(lo, hi) else { return }
    let ab = b - a
    let len2 = max(ab.dot(ab), 1e-12)
    for k in box.k {
      for j in box.j {
        for i in box.i {
          let p = self.body(i, j, k)
          let ap = p - a
          let s = min(1, max(0, ap.dot(ab) / len2))
          let d = (ap - ab * s).length
          if d <= reach { visit(index(i, j, k), d, p) }
        }
      }
    }
  }

  /// Calls `body(index, normalisedRadius, point)` for voxels of the axis-aligned ellipsoid grown by `margin` mm
  /// (normalised radius ρ: 1 on the surface; voxels out to ρ ≈ 1 + margin / min(axes)).
  func forEachVoxel(inEllipsoid c: Vec3, axes: Vec3, margin: Double, _ visit: (Int, Double, Vec3) -> Void) {
    let grow = Vec3(axes.x + margin, axes.y + margin, axes.z + margin)
    guard let box = voxelBox(c - grow, c + grow) else { return }
    for k in box.k {
      for j in box.j {
        for i in box.i {
          let p = self.body(i, j, k)
          let u = (p.x - c.x) / axes.x, v = (p.y - c.y) / axes.y, w = (p.z - c.z) / axes.z
          let rho = (u * u + v * v + w * w).squareRoot()
          let limit = 1 + margin / min(axes.x, axes.y, axes.z)
          if rho <= limit { visit(index(i, j, k), rho, p) }
        }
      }
    }
  }

}

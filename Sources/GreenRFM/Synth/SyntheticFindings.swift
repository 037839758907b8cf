import Foundation
import MedicalImaging

/// The 18 CT-RATE findings in `chest-ct-18` order (the label CSV's column order), with what the generator draws.
enum SynthFinding: Int, CaseIterable {
  case medicalMaterial = 0, arterialWallCalcification, cardiomegaly, pericardialEffusion, coronaryCalcification
  case hiatalHernia, lymphadenopathy, emphysema, atelectasis, lungNodule, lungOpacity, fibroticSequela
  case pleuralEffusion, mosaicAttenuation, peribronchialThickening, consolidation, bronchiectasis, septalThickening
}

extension SynthFindingPlan {
  /// Draws the parameters of the present findings that change anatomy; each finding uses only its own stream.
  init(present: [Bool], anatomy a: SynthAnatomy, frame: SynthFrame, stream: (SynthFinding) -> SynthRandom) {
    self.init(present: present)
    let Z = frame.height, S = a.scale
    let ac0 = a.A - a.fat - a.muscle
    if present[SynthFinding.pleuralEffusion.rawValue] {
      var r = stream(.pleuralEffusion)
      let roll = r.uniform()
      let thickness = r.uniform(20, 40), other = r.uniform(14, 28)
      effusionHeight = Z * r.uniform(0.45, 0.62)
      if roll < 0.4 { effusionRight = thickness; side[SynthFinding.pleuralEffusion.rawValue] = "right" }
      else if roll < 0.7 { effusionLeft = thickness; side[SynthFinding.pleuralEffusion.rawValue] = "left" }
      else { effusionRight = thickness; effusionLeft = other; side[SynthFinding.pleuralEffusion.rawValue] = "bilateral" }
      sizeMM[SynthFinding.pleuralEffusion.rawValue] = Int(thickness.rounded())
    }
    if present[SynthFinding.pericardialEffusion.rawValue] {
      var r = stream(.pericardialEffusion)
      pericardialEffusion = r.uniform(5, 11)
      sizeMM[SynthFinding.pericardialEffusion.rawValue] = Int(pericardialEffusion.rounded())
    }
    if present[SynthFinding.cardiomegaly.rawValue] {
      var r = stream(.cardiomegaly)
      cardiomegalyScale = r.uniform(1.3, 1.5)
    }
    if present[SynthFinding.hiatalHernia.rawValue] {
      var r = stream(.hiatalHernia)
      let axes = Vec3(max(24, S * r.uniform(54, 68)), max(18, S * r.uniform(36, 46)), r.uniform(46, 60))
      let base = a.esophagus[2]
      hernia = (Vec3(base.x + 0.04 * ac0, base.y - 2, base.z + 0.6 * axes.z), axes)
      sizeMM[SynthFinding.hiatalHernia.rawValue] = Int((2 * axes.x).rounded())
    }
    if present[SynthFinding.lymphadenopathy.rawValue] {
      var r = stream(.lymphadenopathy)
      let rt = a.tracheaRadius, c = a.carina
      let names = ["pretracheal", "subcarinal", "right hilar", "left hilar", "aorticopulmonary window", "right paratracheal"]
      func station(_ n: Int, _ radius: Double) -> Vec3 {
        switch n {
        case 0: return Vec3(c.x - 3, c.y - rt - radius - 1, c.z + 0.06 * Z)
        case 1: return Vec3(c.x, c.y + 0.6 * radius, c.z - radius - 4)
        case 2: return Vec3(a.hilumRight.x - 2, a.hilumRight.y - 6, a.hilumRight.z - 4)
        case 3: return Vec3(a.hilumLeft.x + 2, a.hilumLeft.y - 6, a.hilumLeft.z - 4)
        case 4: return Vec3(a.medShift + 0.1 * ac0, c.y - 2, a.archZ - a.aortaRadius - radius - 1)
        default: return Vec3(c.x - rt - radius - 1, c.y, c.z + 0.12 * Z)
        }
      }
      var order = Array(0..<names.count)
      for n in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(n, r.int(n + 1)) }
      let count = r.int(3, 6)
      var chosen: [String] = []
      for n in order.prefix(count) {
        let radius = r.uniform(10, 17)
        nodes.append((station(n, radius), radius))
        chosen.append(names[n])
      }
      sizeMM[SynthFinding.lymphadenopathy.rawValue] = Int((2 * (nodes.map(\.radius).max() ?? 6)).rounded())
      lobe[SynthFinding.lymphadenopathy.rawValue] = chosen.joined(separator: " and ")
    }
    if present[SynthFinding.bronchiectasis.rawValue] {
      var r = stream(.bronchiectasis)
      let roll = r.uniform()
      bronchiectasisSides = roll < 0.4 ? [true, false] : (roll < 0.7 ? [false, true] : [true, true])
      bronchiectasisLumen = r.uniform(3.5, 4.8)
      side[SynthFinding.bronchiectasis.rawValue] = roll < 0.4 ? "right" : (roll < 0.7 ? "left" : "bilateral")
    }
    if present[SynthFinding.peribronchialThickening.rawValue] {
      var r = stream(.peribronchialThickening)
      peribronchialWall = r.uniform(2.4, 3.2)
    }
  }
}

extension SynthRenderer {
  /// "right lower lobe"-style words for a point in a lung.
  func lobe(of p: Vec3) -> (side: String, lobe: String) {
    let side = p.x < anatomy.medShift ? "right" : "left"
    let (_, _, _, bc) = anatomy.bodyAxes(p.z, height: frame.height)
    let t = p.z / frame.height
    if t > 0.58 { return (side, "upper lobe") }
    if side == "right" && p.y < -0.2 * bc && t > 0.3 { return (side, "middle lobe") }
    return (side, "lower lobe")
  }

  func hilum(_ side: Int) -> Vec3 { side == 0 ? anatomy.hilumRight : anatomy.hilumLeft }

  /// Applies the findings that change densities only. `stream(f)` gives finding f's own generator.
  mutating func applyDensityFindings(stream: (SynthFinding) -> SynthRandom) {
    let present = plan.present
    let Z = frame.height
    let f = frame
    func has(_ f: SynthFinding) -> Bool { present[f.rawValue] }

    if has(.emphysema) {
      var r = stream(.emphysema)
      let severity = r.uniform(0.55, 0.85)
      for k in 0..<frame.nk {
        let t = (Double(k) + 0.5) * frame.sz / Z
        let w = severity * (0.6 + 0.4 * t)
        for j in 0..<frame.nj {
          for i in 0..<frame.ni {
            let idx = frame.index(i, j, k)
            if isLung(idx) { blend(idx, -960, w) }
          }
        }
      }
      let bullae = r.int(3, 7)
      for _ in 0..<bullae {
        let radius = r.uniform(5, 12)
        guard let c = lungPoint(&r, side: nil, margin: 2, zRange: 0.4...1) else { continue }
        f.forEachVoxel(nearSegment: c, c, reach: radius + 1.2) { idx, d, _ in
          guard isLungRegion(idx) else { return }
          if d <= radius { hu[idx] = -1000 } else { blend(idx, -720, 0.6) }
        }
      }
      for _ in 0..<40 {
        let radius = r.uniform(1.8, 3.2)
        guard let c = lungPoint(&r, side: nil, margin: 1) else { continue }
        f.forEachVoxel(nearSegment: c, c, reach: radius) { idx, _, _ in if isLung(idx) { hu[idx] = -990 } }
      }
      plan.lobe[SynthFinding.emphysema.rawValue] = "upper lobes"
    }

    if has(.mosaicAttenuation) {
      var r = stream(.mosaicAttenuation)
      var waves: [(Vec3, Double)] = []
      for _ in 0..<3 { waves.append((r.direction() * (2 * Double.pi / r.uniform(30, 45)), r.uniform(0, 2 * Double.pi))) }
      let amplitude = r.uniform(60, 80)
      for k in 0..<frame.nk {
        for j in 0..<frame.nj {
          for i in 0..<frame.ni {
            let idx = frame.index(i, j, k)
            guard isLung(idx) else { continue }
            let p = frame.body(i, j, k)
            var m = 0.0
            for w in waves { m += Foundation.sin(w.0.dot(p) + w.1) }
            hu[idx] += Float(-amplitude * Foundation.tanh(2.5 * m / 3))
          }
        }
      }
    }

    if has(.septalThickening) {
      var r = stream(.septalThickening)
      let lambda = r.uniform(9, 13)
      var families: [(Vec3, Double)] = []
      for _ in 0..<3 { families.append((r.direction(), r.uniform(0, 1))) }
      for k in 0..<frame.nk {
        let z = (Double(k) + 0.5) * frame.sz
        guard z < 0.7 * Z else { continue }
        let (_, _, ac, bc) = anatomy.bodyAxes(z, height: Z)
        for j in 0..<frame.nj {
          for i in 0..<frame.ni {
            let idx = frame.index(i, j, k)
            guard isLung(idx) else { continue }
            let p = frame.body(i, j, k)
            let rc = ((p.x / ac) * (p.x / ac) + (p.y / bc) * (p.y / bc)).squareRoot()
            guard rc > 0.55 else { continue }
            var nearest = Double.infinity
            for f in families {
              var u = (f.0.dot(p) / lambda + f.1).truncatingRemainder(dividingBy: 1)
              if u < 0 { u += 1 }
              nearest = min(nearest, lambda * min(u, 1 - u))
            }
            blend(idx, -280, Self.clamp01((1.2 - nearest) / 0.8))
          }
        }
      }
      plan.lobe[SynthFinding.septalThickening.rawValue] = "lower lobes"
    }

    if has(.lungOpacity) {
      var r = stream(.lungOpacity)
      let patches = r.int(2, 4)
      var sides = Set<String>()
      for _ in 0..<patches {
        let axes = Vec3(r.uniform(20, 32), r.uniform(20, 32), r.uniform(22, 34))
        let target = -r.uniform(350, 500)
        guard let c = lungPoint(&r, side: nil, margin: 4) else { continue }
        sides.insert(lobe(of: c).side)
        f.forEachVoxel(inEllipsoid: c, axes: axes, margin: 5) { idx, rho, _ in
          guard isLung(idx), Double(hu[idx]) < target else { return }
          blend(idx, target, Self.clamp01((1 + 5 / min(axes.x, axes.y) - rho) / (5 / min(axes.x, axes.y))))
        }
      }
      plan.side[SynthFinding.lungOpacity.rawValue] = sides.count == 2 ? "bilateral" : (sides.first ?? "right")
      plan.count[SynthFinding.lungOpacity.rawValue] = patches
    }

    if has(.consolidation) {
      var r = stream(.consolidation)
      let side = r.int(2)
      let lower = r.bernoulli(0.65)
      let axes = Vec3(r.uniform(22, 32), r.uniform(22, 32), r.uniform(26, 40))
      let target = r.uniform(25, 40)
      if let c = lungPoint(&r, side: side, margin: 6, zRange: lower ? 0.12...0.5 : 0.5...0.85) {
        let edge = 4 / min(axes.x, axes.y)
        f.forEachVoxel(inEllipsoid: c, axes: axes, margin: 4) { idx, rho, _ in
          let t = tissue[idx]
          guard isLung(idx) || t == SyntheticTissue.lungVessel.rawValue || t == SyntheticTissue.bronchusWall.rawValue else { return }
          blend(idx, target, Self.clamp01((1 + edge - rho) / edge))
        }
        // Air bronchograms: branching air tubes inside the consolidation, directed away from the hilum.
        let u = (c - hilum(side)).normalised
        var w = u.cross(Vec3(0, 0, 1))
        if w.length < 0.2 { w = Vec3(1, 0, 0) }
        w = w.normalised
        let R = min(axes.x, axes.y)
        let segments = [(c - u * (0.9 * R), c + u * (0.6 * R)), (c, c + (u + w * 0.7).normalised * (0.75 * R)),
                        (c - u * (0.3 * R), c + (u - w * 0.7).normalised * (0.65 * R))]
        for (s0, s1) in segments {
          f.forEachVoxel(nearSegment: s0, s1, reach: 1.4) { idx, _, p in
            let q = Vec3((p.x - c.x) / axes.x, (p.y - c.y) / axes.y, (p.z - c.z) / axes.z)
            if q.length < 0.9 && Double(hu[idx]) > -200 { hu[idx] = Float(-930) }
          }
        }
        let l = lobe(of: c)
        plan.side[SynthFinding.consolidation.rawValue] = l.side
        plan.lobe[SynthFinding.consolidation.rawValue] = l.lobe
      }
    }

    if has(.atelectasis) {
      var r = stream(.atelectasis)
      let side = r.int(2)
      let (_, _, _, bc0) = anatomy.bodyAxes(0.2 * Z, height: Z)
      if let base = lungPoint(&r, side: side, margin: 1, zRange: 0.05...0.35, accept: { $0.y > 0.35 * bc0 }) {
        let apex = Vec3.lerp(hilum(side), base, r.uniform(0.35, 0.55))
        let axis = base - apex
        let length = axis.length
        let radius = r.uniform(18, 28)
        f.forEachVoxel(nearSegment: apex, base + axis.normalised * 8, reach: radius + 2) { idx, _, p in
          guard isLungRegion(idx) else { return }
          let s = (p - apex).dot(axis) / (length * length)
          guard s > 0 else { return }
          let radial = ((p - apex) - axis * s).length
          blend(idx, 22, Self.clamp01((s * radius + 1 - radial) / 1.5))
        }
        let l = lobe(of: base)
        plan.side[SynthFinding.atelectasis.rawValue] = l.side
        plan.lobe[SynthFinding.atelectasis.rawValue] = "lower lobe"
      }
    }

    if has(.fibroticSequela) {
      var r = stream(.fibroticSequela)
      let bands = r.int(2, 4)
      var sides = Set<String>()
      for _ in 0..<bands {
        guard let start = lungPoint(&r, side: nil, margin: 2) else { continue }
        let side = start.x < anatomy.medShift ? 0 : 1
        sides.insert(side == 0 ? "right" : "left")
        let direction = ((start - hilum(side)).normalised + r.direction() * 0.4).normalised
        let end = start + direction * r.uniform(18, 35)
        f.forEachVoxel(nearSegment: start, end, reach: 2.4) { idx, d, _ in
          guard isLungRegion(idx) else { return }
          blend(idx, -60, Self.clamp01((2.0 - d) / 1.0))
        }
      }
      plan.side[SynthFinding.fibroticSequela.rawValue] = sides.count == 2 ? "bilateral" : (sides.first ?? "right")
    }

    if has(.lungNodule) {
      var r = stream(.lungNodule)
      let count = r.int(4, 8)
      var largest = 0.0
      var where_: (side: String, lobe: String)? = nil
      for _ in 0..<count {
        let diameter = r.uniform(18, 28)
        let radius = diameter / 2
        // Away from the hila, where the large vessels would hide a nodule at coarse voxels.
        guard let c = lungPoint(&r, side: nil, margin: 0.6 * radius + 2, accept: {
          ($0 - self.hilum(0)).length > 30 + radius && ($0 - self.hilum(1)).length > 30 + radius
        }) else { continue }
        if diameter > largest { largest = diameter; where_ = lobe(of: c) }
        f.forEachVoxel(nearSegment: c, c, reach: radius + 0.8) { idx, d, _ in
          blend(idx, 30, Self.clamp01((radius + 0.75 - d) / 1.5))
        }
      }
      plan.sizeMM[SynthFinding.lungNodule.rawValue] = Int(largest.rounded())
      plan.count[SynthFinding.lungNodule.rawValue] = count
      plan.side[SynthFinding.lungNodule.rawValue] = where_?.side ?? "right"
      plan.lobe[SynthFinding.lungNodule.rawValue] = where_?.lobe ?? "lower lobe"
    }

    if has(.arterialWallCalcification) {
      var r = stream(.arterialWallCalcification)
      let path = anatomy.aortaPath
      let specks = r.int(4, 12)
      for _ in 0..<specks {
        // Arch and descending aorta mostly (segments from index 1 on).
        let n = 1 + r.int(path.count - 2)
        let a = path[n], b = path[n + 1]
        var along = Vec3.lerp(a, b, r.uniform(0, 1))
        if along.z < 0 || along.z > Z { along.z = min(max(along.z, 0.1 * Z), 0.9 * Z) }
        let axis = (b - a).normalised
        var e1 = axis.cross(Vec3(0, 0, 1))
        if e1.length < 0.2 { e1 = axis.cross(Vec3(1, 0, 0)) }
        e1 = e1.normalised
        let e2 = axis.cross(e1)
        let angle = r.uniform(0, 2 * Double.pi)
        let centre = along + (e1 * Foundation.cos(angle) + e2 * Foundation.sin(angle)) * (anatomy.aortaRadius - 1)
        let radius = r.uniform(2.3, 3.4), value = r.uniform(550, 950)
        f.forEachVoxel(nearSegment: centre, centre, reach: radius + 0.8) { idx, d, _ in
          let w = Self.clamp01((radius + 0.8 - d) / 0.8)
          hu[idx] = max(hu[idx], Float(Double(hu[idx]) + w * (value - Double(hu[idx]))))
        }
      }
      plan.count[SynthFinding.arterialWallCalcification.rawValue] = specks
    }

    if has(.coronaryCalcification) {
      var r = stream(.coronaryCalcification)
      let a = anatomy
      let scale = plan.cardiomegalyScale
      let hA = a.heartA * scale, hB = a.heartB * scale, hC = a.heartC * (1 + 0.45 * (scale - 1))
      let centre = Vec3(a.heartCenter.x + 0.35 * (hA - a.heartA), a.heartCenter.y, a.heartCenter.z + 0.3 * (hC - a.heartC))
      let specks = r.int(2, 5)
      var placed = 0
      for _ in 0..<200 where placed < specks {
        // A point on the heart surface facing anterior or left, in the upper two thirds (the coronary grooves).
        let d = r.direction()
        let local = Vec3(d.x * hA, d.y * hB, d.z * hC)
        let px = local.x * a.heartCos + local.y * a.heartSin, py = -local.x * a.heartSin + local.y * a.heartCos
        let surface = Vec3(centre.x + px, centre.y + py, centre.z + local.z)
        guard d.z > -0.2, d.z < 0.7, -py > 0.3 * hB || px > 0.5 * hA else { continue }
        let outward = Vec3(px, py, local.z).normalised
        let c = surface + outward * (a.epicardialFat * 0.5)
        let radius = r.uniform(2.2, 3.0), value = r.uniform(450, 850)
        f.forEachVoxel(nearSegment: c, c, reach: radius + 0.8) { idx, dist, _ in
          let w = Self.clamp01((radius + 0.8 - dist) / 0.8)
          hu[idx] = max(hu[idx], Float(Double(hu[idx]) + w * (value - Double(hu[idx]))))
        }
        placed += 1
      }
      plan.count[SynthFinding.coronaryCalcification.rawValue] = placed
    }

    if has(.medicalMaterial) {
      var r = stream(.medicalMaterial)
      let kind = r.int(3)
      plan.kind[SynthFinding.medicalMaterial.rawValue] = kind
      let a = anatomy
      // Devices sit under the skin (version 6): a port chamber or generator near thin fat reached past it before, by
      // 22–37 voxels of each in the twelve patients of SynthTests' metal test at 4 × 4 × 8 mm.
      func inBody(_ idx: Int) -> Bool { tissue[idx] != SyntheticTissue.air.rawValue }
      // A wire, lead or catheter thinner than a voxel. Like a scanner's metal blooming, the voxel nearest to each
      // point of it takes the metal's value, so a lead crossing 10 slices is seen (and streaks, below) in all 10;
      // without this a 2 mm lead between voxel centres 4 mm apart touched few voxels or none.
      func metalLine(_ points: [Vec3], radius: Double, value: Double) {
        for n in 0..<(points.count - 1) {
          f.forEachVoxel(nearSegment: points[n], points[n + 1], reach: radius + 0.8) { idx, d, _ in
            guard inBody(idx) else { return }
            let w = Self.clamp01((radius + 0.8 - d) / 1.0)
            hu[idx] = max(hu[idx], Float(Double(hu[idx]) + w * (value - Double(hu[idx]))))
          }
          let length = (points[n + 1] - points[n]).length
          let samples = max(1, Int((length / 1.0).rounded(.up)))
          for s in 0...samples {
            guard let v = f.nearestVoxel(Vec3.lerp(points[n], points[n + 1], Double(s) / Double(samples))) else { continue }
            let idx = f.index(v.i, v.j, v.k)
            if inBody(idx) { hu[idx] = max(hu[idx], Float(value)) }
          }
        }
      }
      let zDevice = 0.74 * Z
      let (A, B, _, _) = a.bodyAxes(zDevice, height: Z)
      let xDevice = a.medShift + 0.45 * A
      let yDevice = -(B * (1 - (0.45 * 0.45)).squareRoot() - max(3, 0.5 * a.fat))
      let ra = a.aortaRadius
      let atrium = Vec3(a.svc[1].x + 2, a.svc[1].y, a.svc[1].z - 0.04 * Z)
      switch kind {
      case 0:  // port catheter: chamber in the left anterior chest wall, catheter through the SVC to the right atrium
        let chamber = Vec3(xDevice, yDevice, zDevice)
        f.forEachVoxel(nearSegment: chamber - Vec3(0, 3, 0), chamber + Vec3(0, 3, 0), reach: 13) { idx, d, _ in
          guard inBody(idx) else { return }
          hu[idx] = max(hu[idx], Float(1800 * Self.clamp01(13.5 - d) + Double(hu[idx]) * (1 - Self.clamp01(13.5 - d))))
        }
        metalLine([chamber, Vec3(a.medShift + 0.25 * A, yDevice * 0.6, 0.97 * Z), Vec3(a.svc[0].x, a.svc[0].y, 0.9 * Z),
                   a.svc[1], atrium], radius: 1.1, value: 1800)
      case 1:  // pacemaker: generator box, lead to the right ventricle
        let generator = Vec3(xDevice, yDevice, zDevice)
        f.forEachVoxel(inEllipsoid: generator, axes: Vec3(22, 6, 18), margin: 0) { idx, rho, _ in
          if rho <= 1, inBody(idx) { hu[idx] = 2500 }
        }
        let apex = Vec3(a.heartCenter.x + 0.4 * a.heartA, a.heartCenter.y - 0.5 * a.heartB, a.heartCenter.z - 0.4 * a.heartC)
        metalLine([generator, Vec3(a.medShift + 0.25 * A, yDevice * 0.6, 0.97 * Z), Vec3(a.svc[0].x, a.svc[0].y, 0.9 * Z),
                   a.svc[1], atrium, apex], radius: 1.0, value: 2500)
      default:  // sternotomy wires: loops around the sternum
        let count = r.int(4, 6)
        let halfWidth = max(5, 12 * a.scale) + 2
        for n in 0..<count {
          // Each loop lies in one slice (snapped to its centre): a 3.6 mm wire between two 8 mm slice centres would
          // otherwise reach no voxel at all, and the patient would be labelled positive with nothing to see.
          let z = (((Z * (0.38 + 0.5 * Double(n) / Double(count))) / f.sz - 0.5).rounded() + 0.5) * f.sz
          let (_, Bz, _, _) = a.bodyAxes(z, height: Z)
          let ys = -(Bz - a.fat - 0.5 * a.muscle)
          let half = max(2.5, 5 * a.scale + 1) + 1
          let x0 = a.medShift * 0.3 - halfWidth, x1 = a.medShift * 0.3 + halfWidth
          metalLine([Vec3(x0, ys - half, z), Vec3(x1, ys - half, z), Vec3(x1, ys + half, z), Vec3(x0, ys + half, z),
                     Vec3(x0, ys - half, z)], radius: 1.8, value: 2500)
        }
        _ = ra
      }
      addMetalStreaks(&r)
    }
  }

  /// Metal artifact: in every slice holding metal (voxels above 1,500 HU), bright and dark streaks radiate from the
  /// metal's centroid across the body, ±400–700 HU (two thirds of that for a slice with one metal voxel, all of it
  /// from three on), about 6 mm wide, fading over about 15 cm. Real CT shows them around ports, pacemakers and sternal wires; unlike the metal itself, which
  /// the [−1000, 200] HU window cannot tell from bone, they reach the lungs and soft tissue, where they stay visible.
  mutating func addMetalStreaks(_ r: inout SynthRandom) {
    let f = frame
    for k in 0..<f.nk {
      var count = 0
      var centroid = Vec3(0, 0, 0)
      for j in 0..<f.nj {
        for i in 0..<f.ni where hu[f.index(i, j, k)] > 1500 {
          count += 1
          centroid = centroid + f.body(i, j, k)
        }
      }
      guard count > 0 else { continue }
      centroid = centroid * (1 / Double(count))
      let strength = min(1, 0.5 + Double(count) / 6)
      let rays = (0..<8).map { n -> (Double, Double, Double) in
        let angle = r.uniform(0, Double.pi)
        let amplitude = strength * r.uniform(400, 700) * (n % 2 == 0 ? 1 : -1)
        return (Foundation.cos(angle), Foundation.sin(angle), amplitude)
      }
      for j in 0..<f.nj {
        for i in 0..<f.ni {
          let idx = f.index(i, j, k)
          guard tissue[idx] != SyntheticTissue.air.rawValue, hu[idx] <= 1500 else { continue }
          let p = f.body(i, j, k)
          let dx = p.x - centroid.x, dy = p.y - centroid.y
          let fade = Foundation.exp(-(dx * dx + dy * dy).squareRoot() / 150)
          var add = 0.0
          for (c, s, amplitude) in rays {
            let across = dx * s - dy * c  // distance from the ray's line
            add += amplitude * Foundation.exp(-across * across / (2 * 2.5 * 2.5))
          }
          hu[idx] += Float(add * fade)
        }
      }
    }
  }
}

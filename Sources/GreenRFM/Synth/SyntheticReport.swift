import Foundation

/// What a synthetic report says about one finding.
public enum SyntheticMention: String, Codable, Sendable, CaseIterable {
  /// Described as present (in one of several phrasings).
  case present
  /// Explicitly negated ("No pleural effusion was observed.").
  case negated
  /// Mentioned with an uncertainty cue ("possibly atelectasis", "cannot be excluded").
  case uncertain
  /// Not mentioned at all.
  case unmentioned
}

/// CT-RATE-style report writer: the usual order of a CT-RATE findings section (airways, mediastinum and heart,
/// esophagus, nodes, "When examined in the lung parenchyma window;", lungs, pleura, upper abdomen, bones) and an
/// impression listing the positive and uncertain findings, then about half of the negated ones (pertinent negatives).
///
/// Mention rules (drawn from the patient's report stream): a present finding is described (88 %) or mentioned as
/// uncertain (12 %), never negated or left out; an absent one is negated (45 %), mentioned as uncertain (4 %) or
/// left out. Phrasings are varied on purpose so that a rule labeler has work to do.
enum SynthReportWriter {
  struct Output {
    var findings: String
    var impression: String
    var mentions: [SyntheticMention]
  }

  static func write(present: [Bool], plan: SynthFindingPlan, random r: inout SynthRandom) -> Output {
    let count = SynthFinding.allCases.count
    var mentions = [SyntheticMention](repeating: .unmentioned, count: count)
    for f in 0..<count {
      let roll = r.uniform()
      if present[f] { mentions[f] = roll < 0.12 ? .uncertain : .present }
      else { mentions[f] = roll < 0.45 ? .negated : (roll < 0.49 ? .uncertain : .unmentioned) }
    }
    func sideText(_ f: SynthFinding, lungs: Bool = true) -> String {
      switch plan.side[f.rawValue] ?? "right" {
      case "bilateral": return lungs ? "both lungs" : "both hemithoraces"
      case let s: return lungs ? "the \(s) lung" : "the \(s) hemithorax"
      }
    }
    func size(_ f: SynthFinding, _ fallback: Int) -> Int { plan.sizeMM[f.rawValue] ?? fallback }
    func lobe(_ f: SynthFinding) -> String {
      let side = plan.side[f.rawValue] ?? "right"
      let lobe = plan.lobe[f.rawValue] ?? "lower lobe"
      return side == "bilateral" ? "both \(lobe)s" : "the \(lobe) of the \(side) lung"
    }

    // Sentences per finding: (present phrasings, uncertain phrasings, negated phrasings).
    func sentences(_ f: SynthFinding) -> ([String], [String], [String]) {
      switch f {
      case .medicalMaterial:
        let kind = plan.kind[f.rawValue] ?? 0
        let present: [String] = kind == 0
          ? ["A port catheter is observed, extending from the left subclavian vein into the superior vena cava.",
             "Central venous port catheter in place; its tip is in the right atrium.",
             "A chemoport with its catheter tip at the cavoatrial junction is observed."]
          : kind == 1
            ? ["A cardiac pacemaker is present in the left pectoral region, its lead extending into the right ventricle.",
               "Pacemaker generator in the left anterior chest wall and its electrode in the right heart cavities.",
               "Cardiac device (pacemaker) is observed."]
            : ["Sternotomy wires are observed.", "Median sternotomy with metallic sternal wires.",
               "Sternal wires related to previous surgery are observed."]
        return (present, ["A linear hyperdense structure that may represent a catheter is noted."],
                ["No medical device or catheter was observed.", "No surgical material was observed in the thorax."])
      case .arterialWallCalcification:
        return (["Atheromatous plaques are observed in the aorta.",
                 "Calcified atherosclerotic plaques were observed in the wall of the thoracic aorta.",
                 "Aortic wall calcifications are noted.", "Atherosclerotic changes are observed in the aortic arch and descending aorta."],
                ["Minimal calcification is suspected in the aortic arch.", "Possible atherosclerotic calcification of the aortic wall."],
                ["No calcified plaque was observed in the aortic wall.", "No atherosclerotic calcification was detected in the thoracic aorta."])
      case .cardiomegaly:
        return (["Heart size is increased.", "Cardiomegaly is observed.", "The heart is enlarged.",
                 "Cardiothoracic ratio is increased in favor of cardiomegaly."],
                ["Heart size is at the upper limit; cardiomegaly cannot be excluded."],
                ["Heart size is normal.", "No cardiomegaly was detected."])
      case .pericardialEffusion:
        let mm = size(f, 8)
        return (["Pericardial effusion with a thickness of \(mm) mm is observed.",
                 "Fluid is present in the pericardial space, reaching \(mm) mm.", "There is pericardial effusion."],
                ["Questionable minimal pericardial effusion."],
                ["Pericardial effusion-thickening was not observed.", "No pericardial effusion was detected."])
      case .coronaryCalcification:
        return (["Calcification is observed in the coronary arteries.",
                 "Coronary artery calcifications are present in the left anterior descending artery.",
                 "Calcified plaques in the coronary arteries."],
                ["Possible coronary artery calcification."],
                ["No coronary artery calcification was observed."])
      case .hiatalHernia:
        return (["A hiatal hernia is observed.", "Sliding type hiatal hernia with a diameter of \(size(f, 40)) mm.",
                 "Part of the stomach herniates through the esophageal hiatus (hiatal hernia)."],
                ["A small hiatal hernia cannot be excluded."],
                ["No hiatal hernia was detected."])
      case .lymphadenopathy:
        let stations = plan.lobe[f.rawValue] ?? "subcarinal"
        let mm = size(f, 15)
        return (["Lymph nodes reaching a short axis of \(mm) mm are observed in the \(stations) regions.",
                 "Mediastinal lymphadenopathy is present, the largest measuring \(mm) mm.",
                 "Enlarged lymph nodes were observed in the \(stations) stations."],
                ["Borderline lymph nodes in the subcarinal region; lymphadenopathy cannot be excluded."],
                ["No enlarged lymph nodes in prevascular, pre-paratracheal, subcarinal or bilateral hilar-axillary pathological dimensions were detected.",
                 "No lymph nodes in pathological size and configuration were detected in the mediastinum and hilar regions."])
      case .emphysema:
        return (["Centriacinar emphysema is observed in both lungs, more prominent in the upper lobes.",
                 "Emphysematous changes and bullae are observed in both lungs.",
                 "Paraseptal and centrilobular emphysema is present."],
                ["Mild emphysematous changes are suspected in the upper lobes."],
                ["No emphysema was observed."])
      case .atelectasis:
        let where_ = lobe(f)
        return (["Atelectasis is observed in \(where_).", "Subsegmental atelectatic changes are seen in \(where_).",
                 "Wedge-shaped atelectasis at the base of \(sideText(f))."],
                ["Linear density at the base of \(sideText(f)), possibly atelectasis."],
                ["No atelectasis was observed."])
      case .lungNodule:
        let mm = size(f, 8), n = plan.count[f.rawValue] ?? 1
        let many = n > 1
        return ([many ? "Nodules were observed in the lungs, the largest being \(mm) mm in \(lobe(f))."
                  : "A \(mm) mm solid nodule is observed in \(lobe(f)).",
                 many ? "\(n) non-calcified nodules are seen in the lung parenchyma, the largest \(mm) mm."
                  : "A non-calcified nodule measuring \(mm) mm is observed in \(lobe(f)).",
                 "Pulmonary nodule with a diameter of \(mm) mm in \(lobe(f))."],
                ["A millimetric nodule cannot be excluded in the lower lobes."],
                ["No mass or nodule was detected in either lung.", "No pulmonary nodule was observed."])
      case .lungOpacity:
        return (["Ground glass opacities are observed in \(sideText(f)).", "Patchy ground-glass areas are seen in \(sideText(f)).",
                 "Areas of increased density in ground glass pattern in \(sideText(f))."],
                ["Faint ground-glass opacity is questionable in \(sideText(f))."],
                ["No ground glass opacity was observed."])
      case .fibroticSequela:
        return (["Fibrotic bands are observed in \(sideText(f)).", "Parenchymal bands consistent with sequelae are seen in \(sideText(f)).",
                 "Sequelae fibrotic changes are observed in \(sideText(f))."],
                ["Linear changes in \(sideText(f)), possibly fibrotic."],
                ["No fibrotic changes were observed."])
      case .pleuralEffusion:
        let mm = size(f, 20)
        let bilateral = plan.side[f.rawValue] == "bilateral"
        return ([bilateral ? "Bilateral pleural effusion, thickest \(mm) mm, is observed."
                  : "Pleural effusion measuring \(mm) mm in its thickest part is observed in \(sideText(f, lungs: false)).",
                 "Fluid is observed in the pleural space of \(sideText(f, lungs: false)).",
                 "There is pleural effusion in \(sideText(f, lungs: false))."],
                ["Minimal pleural effusion is questionable in \(sideText(f, lungs: false))."],
                ["Pleural effusion-thickening was not detected.", "No pleural effusion was observed."])
      case .mosaicAttenuation:
        return (["Mosaic attenuation pattern is observed in both lungs.", "Areas of air trapping with a mosaic pattern are seen."],
                ["Subtle mosaic attenuation, possibly air trapping."],
                ["No mosaic attenuation was observed."])
      case .peribronchialThickening:
        return (["Peribronchial thickening is observed in both lungs.", "Bronchial wall thickening is noted.",
                 "Peribronchial interstitial thickening is present."],
                ["Minimal peribronchial thickening is questionable."],
                ["No peribronchial thickening was observed."])
      case .consolidation:
        let where_ = lobe(f)
        return (["Consolidation with air bronchograms is observed in \(where_).", "An area of consolidation was detected in \(where_).",
                 "Consolidative changes in \(where_), consistent with pneumonia."],
                ["Findings suspicious for early consolidation in \(where_)."],
                ["No consolidation was detected."])
      case .bronchiectasis:
        return (["Cylindrical bronchiectasis is observed in the lower lobe of \(sideText(f)).",
                 "Bronchiectatic changes are seen in \(sideText(f)).", "Dilated bronchi are seen in the lower lobe of \(sideText(f))."],
                ["Minimal bronchiectasis cannot be ruled out."],
                ["No bronchiectasis was detected."])
      case .septalThickening:
        return (["Interlobular septal thickening is observed in the lower lobes.",
                 "Thickening of the interlobular septa is seen in the peripheral areas of both lungs."],
                ["Questionable mild septal thickening at the bases."],
                ["No interlobular septal thickening was observed."])
      }
    }
    func say(_ f: SynthFinding) -> String? {
      let (p, u, n) = sentences(f)
      switch mentions[f.rawValue] {
      case .present: return r.pick(p)
      case .uncertain: return r.pick(u)
      case .negated: return r.pick(n)
      case .unmentioned: return nil
      }
    }

    var parts: [String] = []
    parts.append(r.pick(["Trachea and both main bronchi are open.", "Trachea and both main bronchi are in the midline and open.",
                         "Trachea and main bronchi are patent."]))
    if r.bernoulli(0.6) { parts.append("No occlusive pathology was detected in the trachea and both main bronchi.") }
    if let s = say(.medicalMaterial) { parts.append(s) }
    // Mediastinum and heart.
    if mentions[SynthFinding.cardiomegaly.rawValue] == .unmentioned {
      parts.append("Mediastinal main vascular structures and heart contour were evaluated.")
    } else if let s = say(.cardiomegaly) { parts.append(s) }
    parts.append(r.pick(["Thoracic aorta diameter is normal.", "The calibration of the thoracic aorta is normal."]))
    for f in [SynthFinding.arterialWallCalcification, .coronaryCalcification, .pericardialEffusion] {
      if let s = say(f) { parts.append(s) }
    }
    parts.append("Thoracic esophagus calibration was normal and no significant tumoral wall thickening was detected.")
    if let s = say(.hiatalHernia) { parts.append(s) }
    if let s = say(.lymphadenopathy) { parts.append(s) }
    parts.append("When examined in the lung parenchyma window;")
    var lung: [SynthFinding] = [.emphysema, .lungNodule, .consolidation, .lungOpacity, .atelectasis, .fibroticSequela,
                                .mosaicAttenuation, .bronchiectasis, .peribronchialThickening, .septalThickening]
    for n in stride(from: lung.count - 1, to: 0, by: -1) { lung.swapAt(n, r.int(n + 1)) }
    var lungSaid = 0
    for f in lung {
      if let s = say(f) { parts.append(s); if mentions[f.rawValue] != .negated { lungSaid += 1 } }
    }
    if lungSaid == 0 { parts.append("No mass or infiltrative lesion was detected in both lungs.") }
    if let s = say(.pleuralEffusion) { parts.append(s) }
    parts.append(r.pick(["Upper abdominal organs included in the sections are normal.",
                         "No space-occupying lesion was detected in the liver that entered the cross-sectional area.",
                         "Upper abdominal organs within the scan field are unremarkable."]))
    parts.append(r.pick(["Degenerative changes are observed in the thoracic vertebrae.",
                         "No lytic-destructive lesions were detected in the bone structures in the study area.",
                         "Bone structures in the study area are natural."]))

    // Impression: positive findings first, then uncertain ones.
    let short: [SynthFinding: (String, String)] = [
      .medicalMaterial: (r.pick(["Medical device in place", "Medical material in the thorax"])
                         + " (\(["port catheter", "pacemaker", "sternotomy wires"][plan.kind[0] ?? 0])).", "Possible catheter."),
      .arterialWallCalcification: ("Aortic atherosclerosis.", "Possible aortic wall calcification."),
      .cardiomegaly: ("Cardiomegaly.", "Borderline heart size, possible cardiomegaly."),
      .pericardialEffusion: ("Pericardial effusion.", "Questionable pericardial effusion."),
      .coronaryCalcification: ("Coronary artery calcification.", "Possible coronary calcification."),
      .hiatalHernia: ("Hiatal hernia.", "Possible hiatal hernia."),
      .lymphadenopathy: ("Mediastinal lymphadenopathy.", "Lymphadenopathy cannot be excluded."),
      .emphysema: ("Emphysema.", "Possible emphysema."),
      .atelectasis: ("Atelectasis.", "Possible atelectasis."),
      .lungNodule: ("Pulmonary nodule.", "Possible pulmonary nodule."),
      .lungOpacity: (r.pick(["Ground glass opacities.", "Lung opacities of ground glass density.", "Lung opacity."]),
                     "Possible ground glass opacity."),
      .fibroticSequela: ("Fibrotic sequelae.", "Possible fibrotic changes."),
      .pleuralEffusion: ("Pleural effusion.", "Possible pleural effusion."),
      .mosaicAttenuation: ("Mosaic attenuation pattern.", "Possible mosaic attenuation."),
      .peribronchialThickening: ("Peribronchial thickening.", "Possible peribronchial thickening."),
      .consolidation: ("Consolidation, pneumonia?", "Possible early consolidation."),
      .bronchiectasis: ("Bronchiectasis.", "Possible bronchiectasis."),
      .septalThickening: ("Interlobular septal thickening.", "Possible septal thickening."),
    ]
    // Pertinent negatives: about half of the negated findings are repeated in the impression ("No pleural
    // effusion."), as many radiologists write them; they put "no X" statements within the text encoder's first 128
    // tokens (the impression is read first), which is what the "There is no X." zero-shot prompt needs.
    let negative: [SynthFinding: [String]] = [
      .medicalMaterial: ["No medical device.", "No surgical material."],
      .arterialWallCalcification: ["No aortic wall calcification.", "No atherosclerotic calcification."],
      .cardiomegaly: ["No cardiomegaly.", "Heart size is normal."],
      .pericardialEffusion: ["No pericardial effusion."],
      .coronaryCalcification: ["No coronary artery calcification."],
      .hiatalHernia: ["No hiatal hernia."],
      .lymphadenopathy: ["No lymphadenopathy.", "No mediastinal lymphadenopathy."],
      .emphysema: ["No emphysema."],
      .atelectasis: ["No atelectasis."],
      .lungNodule: ["No pulmonary nodule.", "No lung nodule."],
      .lungOpacity: ["No ground glass opacity.", "No lung opacity."],
      .fibroticSequela: ["No fibrotic sequelae."],
      .pleuralEffusion: ["No pleural effusion."],
      .mosaicAttenuation: ["No mosaic attenuation pattern."],
      .peribronchialThickening: ["No peribronchial thickening."],
      .consolidation: ["No consolidation."],
      .bronchiectasis: ["No bronchiectasis."],
      .septalThickening: ["No interlobular septal thickening."],
    ]
    var impression: [String] = []
    for f in SynthFinding.allCases where mentions[f.rawValue] == .present { impression.append(short[f]!.0) }
    for f in SynthFinding.allCases where mentions[f.rawValue] == .uncertain { impression.append(short[f]!.1) }
    if impression.isEmpty { impression.append(r.pick(["No significant pathology was detected.", "Normal chest CT findings."])) }
    for f in SynthFinding.allCases where mentions[f.rawValue] == .negated && r.bernoulli(0.5) {
      impression.append(r.pick(negative[f]!))
    }
    return Output(findings: parts.joined(separator: " "), impression: impression.joined(separator: " "), mentions: mentions)
  }
}
